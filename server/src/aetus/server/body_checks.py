"""Validation rules for each kind of event body: metrics, frames, status, alerts."""

from __future__ import annotations

import numpy as np

from aetus.server.checks import (
    MAX_TIME_OFFSET_NS,
    SAMPLE_BYTES,
    CheckContext,
    Limits,
    check_enum,
    check_identifier,
    check_int64,
    check_name,
    check_plausible_time,
    check_text,
    check_unique,
    event_error,
    event_time_ns,
    resolve_time_source,
)
from aetus.telemetry.v1 import telemetry_pb2


def _check_metrics(event: telemetry_pb2.Event, index: int, ctx: CheckContext) -> None:
    limits = ctx.limits
    metrics = event.metrics.metrics
    if not metrics:
        raise event_error(index, "metrics.metrics", "empty; send at least one metric")
    if len(metrics) > limits.max_metrics_per_event:
        raise event_error(
            index,
            "metrics.metrics",
            f"{len(metrics)} metrics exceed the limit of "
            f"{limits.max_metrics_per_event} per event; split them over events",
            count=len(metrics),
            limit=limits.max_metrics_per_event,
        )
    checked = ctx.checked_metrics
    names = []
    for position, metric in enumerate(metrics):
        name = metric.name
        unit = metric.unit
        names.append(name)
        if (name, unit) not in checked:
            path = f"metrics.metrics[{position}]"
            check_name(index, f"{path}.name", name, limits.max_name_length)
            check_text(index, f"{path}.unit", unit, limits.max_unit_length)
            checked.add((name, unit))
        # A metric without a value is accepted as a missing reading.
        if metric.WhichOneof("value") == "string_value":
            check_text(
                index,
                f"metrics.metrics[{position}].string_value",
                metric.string_value,
                limits.max_string_value_length,
            )
    if len(set(names)) != len(names):
        check_unique(index, "metrics.metrics[{}].name", names, "metrics")


def _check_signal_frame(
    event: telemetry_pb2.Event, index: int, ctx: CheckContext
) -> None:
    limits = ctx.limits
    frame = event.signal_frame
    check_name(index, "signal_frame.stream", frame.stream, limits.max_name_length)
    if frame.sample_interval_ns == 0:
        raise event_error(
            index,
            "signal_frame.sample_interval_ns",
            "must be greater than 0; set the ns between two samples of one channel",
        )
    check_int64(index, "signal_frame.sample_interval_ns", frame.sample_interval_ns)
    if frame.sample_count == 0:
        raise event_error(
            index,
            "signal_frame.sample_count",
            "must be greater than 0; set the number of samples per channel",
        )
    span_ns = frame.sample_interval_ns * (frame.sample_count - 1)
    if span_ns > MAX_TIME_OFFSET_NS:
        raise event_error(
            index,
            "signal_frame.sample_interval_ns",
            f"{frame.sample_count} samples every {frame.sample_interval_ns} ns "
            f"span {span_ns} ns, over the limit of {MAX_TIME_OFFSET_NS} ns",
            span_ns=span_ns,
            limit=MAX_TIME_OFFSET_NS,
        )
    check_enum(
        index,
        "signal_frame.encoding",
        frame.encoding,
        telemetry_pb2.SampleEncoding.DESCRIPTOR,
        required=True,
    )
    check_enum(
        index,
        "signal_frame.layout",
        frame.layout,
        telemetry_pb2.SampleLayout.DESCRIPTOR,
        required=False,
    )
    _check_channels(frame, index, limits)
    _check_sample_bytes(frame, index)


def _check_channels(
    frame: telemetry_pb2.SignalFrame, index: int, limits: Limits
) -> None:
    channels = frame.channels
    if not channels:
        raise event_error(
            index,
            "signal_frame.channels",
            "empty; describe at least one channel",
        )
    if len(channels) > limits.max_channels:
        raise event_error(
            index,
            "signal_frame.channels",
            f"{len(channels)} channels exceed the limit of {limits.max_channels}; "
            "split them over several streams",
            count=len(channels),
            limit=limits.max_channels,
        )
    for position, channel in enumerate(channels):
        path = f"signal_frame.channels[{position}]"
        check_name(index, f"{path}.name", channel.name, limits.max_name_length)
        check_text(index, f"{path}.unit", channel.unit, limits.max_unit_length)
        for factor in ("scale", "offset"):
            value = getattr(channel, factor)
            if channel.HasField(factor) and not _is_finite(value):
                raise event_error(
                    index,
                    f"{path}.{factor}",
                    f"{value!r} is not a finite number; send a finite {factor} "
                    "or leave it unset",
                    value=value,
                )
    check_unique(
        index,
        "signal_frame.channels[{}].name",
        [c.name for c in channels],
        "channels",
    )


def _check_sample_bytes(frame: telemetry_pb2.SignalFrame, index: int) -> None:
    width = SAMPLE_BYTES[frame.encoding]
    channel_count = len(frame.channels)
    expected = frame.sample_count * channel_count * width
    if len(frame.samples) != expected:
        raise event_error(
            index,
            "signal_frame.samples",
            f"length {len(frame.samples)} does not match sample_count "
            f"{frame.sample_count} x {channel_count} channels x {width} bytes "
            f"= {expected}",
            length=len(frame.samples),
            expected=expected,
            sample_count=frame.sample_count,
            channel_count=channel_count,
            sample_bytes=width,
        )


def _check_status(event: telemetry_pb2.Event, index: int, ctx: CheckContext) -> None:
    status = event.status
    check_enum(
        index,
        "status.state",
        status.state,
        telemetry_pb2.DeviceState.DESCRIPTOR,
        required=False,
    )
    check_text(
        index, "status.reset_reason", status.reset_reason, ctx.limits.max_name_length
    )
    check_text(index, "status.message", status.message, ctx.limits.max_text_length)


def _check_alert(event: telemetry_pb2.Event, index: int, ctx: CheckContext) -> None:
    alert = event.alert
    check_identifier(index, "alert.code", alert.code, ctx.limits.max_name_length)
    check_enum(
        index,
        "alert.severity",
        alert.severity,
        telemetry_pb2.Severity.DESCRIPTOR,
        required=True,
    )
    check_text(index, "alert.message", alert.message, ctx.limits.max_text_length)


def _is_finite(value: float) -> bool:
    return value - value == 0.0


def _check_metric_columns(
    event: telemetry_pb2.Event, index: int, ctx: CheckContext
) -> None:
    columns = event.metric_columns
    _check_column_names(columns, index, ctx.limits)
    point_count = len(columns.name_indices)
    if point_count == 0:
        raise event_error(
            index, "metric_columns.name_indices", "empty; send at least one point"
        )
    for column in ("time_offsets_ns", "values"):
        length = len(getattr(columns, column))
        if length != point_count:
            raise event_error(
                index,
                f"metric_columns.{column}",
                f"length {length} does not match name_indices length "
                f"{point_count}; send one entry per point in every column",
                length=length,
                expected=point_count,
            )

    indices = np.array(columns.name_indices, dtype=np.int64)
    out_of_range = np.flatnonzero(indices >= len(columns.names))
    if out_of_range.size:
        position = int(out_of_range[0])
        raise event_error(
            index,
            f"metric_columns.name_indices[{position}]",
            f"{int(indices[position])} is out of range for {len(columns.names)} names",
            value=int(indices[position]),
            name_count=len(columns.names),
        )
    _check_time_offsets(event, index, ctx)


def _check_column_names(
    columns: telemetry_pb2.MetricColumns, index: int, limits: Limits
) -> None:
    names = columns.names
    if not names:
        raise event_error(
            index, "metric_columns.names", "empty; send the name of every metric"
        )
    if len(names) > limits.max_column_names:
        raise event_error(
            index,
            "metric_columns.names",
            f"{len(names)} names exceed the limit of {limits.max_column_names}; "
            "split them over events",
            count=len(names),
            limit=limits.max_column_names,
        )
    for position, name in enumerate(names):
        check_name(
            index, f"metric_columns.names[{position}]", name, limits.max_name_length
        )
    check_unique(index, "metric_columns.names[{}]", list(names), "names")
    if columns.units and len(columns.units) != len(names):
        raise event_error(
            index,
            "metric_columns.units",
            f"{len(columns.units)} units for {len(names)} names; send no units "
            "or one per name",
            unit_count=len(columns.units),
            name_count=len(names),
        )
    for position, unit in enumerate(columns.units):
        check_text(
            index, f"metric_columns.units[{position}]", unit, limits.max_unit_length
        )


def _check_time_offsets(
    event: telemetry_pb2.Event, index: int, ctx: CheckContext
) -> None:
    offsets = np.array(event.metric_columns.time_offsets_ns, dtype=np.int64)
    too_far = np.flatnonzero(
        (offsets > MAX_TIME_OFFSET_NS) | (offsets < -MAX_TIME_OFFSET_NS)
    )
    if too_far.size:
        position = int(too_far[0])
        raise event_error(
            index,
            f"metric_columns.time_offsets_ns[{position}]",
            f"{int(offsets[position])} ns is beyond the limit of "
            f"{MAX_TIME_OFFSET_NS} ns either way",
            value=int(offsets[position]),
            limit=MAX_TIME_OFFSET_NS,
        )
    if resolve_time_source(event) != telemetry_pb2.TIME_SOURCE_SYNCED:
        return
    # The event time itself passed the plausibility check, so only the
    # earliest and latest point can leave the window.
    base_ns = event_time_ns(event)
    for position in (int(np.argmin(offsets)), int(np.argmax(offsets))):
        check_plausible_time(
            index,
            f"metric_columns.time_offsets_ns[{position}]",
            base_ns + int(offsets[position]),
            ctx,
        )


BODY_CHECKS = {
    "metrics": _check_metrics,
    "signal_frame": _check_signal_frame,
    "status": _check_status,
    "alert": _check_alert,
    "metric_columns": _check_metric_columns,
}
