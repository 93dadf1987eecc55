"""Normalisation: validated ingest events -> one columnar ``NormalizedBatch``."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import numpy.typing as npt
from google.protobuf.message import Message

from aetus.server.checks import (
    NS_PER_MS,
    CheckContext,
    Limits,
    check_batch_size,
    event_error,
    event_time_ns,
)
from aetus.server.records import (
    ChannelSpec,
    DeviceEventRecord,
    EventKey,
    EventKind,
    EventRecord,
    Float64Array,
    FrameRecord,
    Int64Array,
    MetricSeriesPoints,
    NormalizedBatch,
    ValueType,
)
from aetus.server.validation import validate_event
from aetus.telemetry.v1 import telemetry_pb2

MessageT = TypeVar("MessageT", bound=Message)

BootKey = tuple[str, str]

_KINDS = {
    "metrics": EventKind.METRICS,
    "signal_frame": EventKind.SIGNAL_FRAME,
    "status": EventKind.STATUS,
    "alert": EventKind.ALERT,
    "metric_columns": EventKind.METRIC_COLUMNS,
}
_NUMERIC = {ValueType.DOUBLE, ValueType.INT64}
_VALUE_TYPES = {
    "double_value": ValueType.DOUBLE,
    "int_value": ValueType.INT64,
    "bool_value": ValueType.BOOL,
    "string_value": ValueType.STRING,
}


class BootClock:
    """Boot start estimates of uptime-only boots, kept consistent across batches.

    A boot's start is estimated as arrival time minus the largest uptime seen
    in a request. Network delay only makes that estimate later than the truth,
    so the smallest estimate seen for a boot is the best one, and every event
    of the boot is placed from it. Estimates live in the store and in a
    bounded in-memory cache in front of it.
    """

    def __init__(
        self,
        lookup: Callable[[str, str], int | None],
        *,
        max_entries: int = 100_000,
    ) -> None:
        """Create a clock.

        Args:
            lookup: Stored estimate of a boot (``TelemetryWriter.boot_time_ns``);
                blocking, so it runs in a worker thread.
            max_entries: Boots kept in memory; the least recently used go first.
        """
        self._lookup = lookup
        self._max_entries = max_entries
        self._cache: OrderedDict[BootKey, int] = OrderedDict()

    async def resolve(self, estimates: Mapping[BootKey, int]) -> dict[BootKey, int]:
        """Combine new estimates with known ones and return the smallest per boot."""
        resolved: dict[BootKey, int] = {}
        for key, estimate in estimates.items():
            known = self._cache.get(key)
            if known is None:
                known = await asyncio.to_thread(self._lookup, *key)
            best = estimate if known is None else min(known, estimate)
            # A concurrent request may have stored a smaller value meanwhile.
            cached = self._cache.get(key)
            if cached is not None:
                best = min(best, cached)
            self._remember(key, best)
            resolved[key] = best
        return resolved

    def _remember(self, key: BootKey, start_ns: int) -> None:
        self._cache[key] = start_ns
        self._cache.move_to_end(key)
        while len(self._cache) > self._max_entries:
            self._cache.popitem(last=False)


@dataclass(slots=True)
class NormalizedRequest:
    """A normalised request plus what maps the batch back to the request.

    Attributes:
        batch: The events, points, frames and device events to store.
        request_indices: Request index of each entry of ``batch.events``.
        duplicate_count: Events whose identity repeats an earlier event of the
            same request. The first copy is kept and the others are dropped.
    """

    batch: NormalizedBatch
    request_indices: list[int]
    duplicate_count: int


@dataclass(slots=True)
class _Series:
    """Points of one metric of one device: single points and whole columns.

    ``value_type`` is None while every reading so far arrived without a
    value; ``type_index`` is the request index of the event that set it.
    """

    unit: str
    value_type: ValueType | None
    first_index: int
    type_index: int
    # Points from metric sets, one Python value each, converted once at the end.
    # A reading without a value has None here and True in point_missing.
    point_event_index: list[int] = field(default_factory=list)
    point_time_ns: list[int] = field(default_factory=list)
    point_values: list[float | int | str | None] = field(default_factory=list)
    point_missing: list[bool] = field(default_factory=list)
    # Points from metric columns as (event index, time, value) arrays.
    column_parts: list[tuple[Int64Array, Int64Array, Float64Array]] = field(
        default_factory=list
    )


class Normalizer:
    """Validates requests and turns them into ``NormalizedRequest`` objects."""

    def __init__(self, limits: Limits, boot_clock: BootClock) -> None:
        self.limits = limits
        self._boot_clock = boot_clock

    async def normalize(
        self,
        events: Sequence[telemetry_pb2.Event],
        *,
        device_id: str | None,
        arrival_ns: int | None = None,
    ) -> NormalizedRequest:
        """Validate ``events`` and build the batch to store.

        Args:
            events: The request's events.
            device_id: Device of the credential, or None for the admin
                credential, which may send for any device.
            arrival_ns: Arrival time in ns since the epoch; now when omitted.

        Raises:
            ApiError: The batch breaks a rule; nothing of it may be stored.
        """
        arrival_ns = time.time_ns() if arrival_ns is None else arrival_ns
        check_batch_size(len(events), self.limits)
        ctx = CheckContext(self.limits, arrival_ns, device_id)
        sources = [validate_event(event, i, ctx) for i, event in enumerate(events)]

        estimates: dict[BootKey, int] = {}
        for event, source in zip(events, sources, strict=True):
            if source == telemetry_pb2.TIME_SOURCE_UPTIME:
                key = (event.device_id, event.boot_id)
                estimate = arrival_ns - event.uptime_ms * NS_PER_MS
                estimates[key] = min(estimate, estimates.get(key, estimate))
        boot_starts = await self._boot_clock.resolve(estimates)

        builder = _BatchBuilder(arrival_ns, boot_starts)
        for index, (event, source) in enumerate(zip(events, sources, strict=True)):
            builder.add(event, index, source)
        return builder.finish()


class _BatchBuilder:
    """Accumulates one request's events into the columns of a NormalizedBatch."""

    def __init__(self, arrival_ns: int, boot_starts: dict[BootKey, int]) -> None:
        self.batch = NormalizedBatch(
            received_time_ns=arrival_ns, boot_times_ns=dict(boot_starts)
        )
        self._boot_starts = boot_starts
        self._keys: set[EventKey] = set()
        self._request_indices: list[int] = []
        self._duplicates = 0
        self._series: dict[tuple[str, str], _Series] = {}

    def add(self, event: telemetry_pb2.Event, index: int, source: int) -> None:
        key = EventKey(event.device_id, event.boot_id, event.sequence)
        if key in self._keys:
            self._duplicates += 1
            return
        self._keys.add(key)

        if source == telemetry_pb2.TIME_SOURCE_UPTIME:
            boot_start = self._boot_starts[(event.device_id, event.boot_id)]
            time_ns = boot_start + event.uptime_ms * NS_PER_MS
        elif source == telemetry_pb2.TIME_SOURCE_UNSPECIFIED:
            # Neither time nor uptime_ms: the arrival time is the best estimate.
            time_ns = self.batch.received_time_ns
        else:
            time_ns = event_time_ns(event)
        body = event.WhichOneof("body")
        assert body is not None  # validate_event rejects events without a body
        batch_index = len(self.batch.events)
        self.batch.events.append(
            EventRecord(
                key=key,
                kind=_KINDS[body],
                time_ns=time_ns,
                time_source=source,
                uptime_ms=event.uptime_ms,
                firmware_version=event.firmware_version,
                payload=_payload(event, body),
            )
        )
        self._request_indices.append(index)
        self._add_body(event, body, index, batch_index, time_ns)

    def finish(self) -> NormalizedRequest:
        for (device_id, name), series in self._series.items():
            self.batch.metrics.append(_series_points(device_id, name, series))
        return NormalizedRequest(self.batch, self._request_indices, self._duplicates)

    def _add_body(
        self,
        event: telemetry_pb2.Event,
        body: str,
        index: int,
        batch_index: int,
        time_ns: int,
    ) -> None:
        if body == "metrics":
            self._add_metric_set(event, index, batch_index, time_ns)
        elif body == "metric_columns":
            self._add_metric_columns(event, index, batch_index, time_ns)
        elif body == "signal_frame":
            self.batch.frames.append(_frame_record(event, batch_index, time_ns))
        else:
            message = event.status if body == "status" else event.alert
            self.batch.device_events.append(
                DeviceEventRecord(
                    event_index=batch_index,
                    device_id=event.device_id,
                    kind=_KINDS[body],
                    time_ns=time_ns,
                    body=message.SerializeToString(),
                )
            )

    def _add_metric_set(
        self, event: telemetry_pb2.Event, index: int, batch_index: int, time_ns: int
    ) -> None:
        device_id = event.device_id
        for position, metric in enumerate(event.metrics.metrics):
            # A metric without a value is a missing reading, such as a failed
            # sensor read; it is stored as NULL in the stream's type.
            kind = metric.WhichOneof("value")
            series = self._series_for(
                device_id,
                metric.name,
                metric.unit,
                None if kind is None else _VALUE_TYPES[kind],
                index,
                "metrics.metrics[{}]",
                position,
            )
            series.point_event_index.append(batch_index)
            series.point_time_ns.append(time_ns)
            series.point_values.append(None if kind is None else getattr(metric, kind))
            series.point_missing.append(kind is None)

    def _add_metric_columns(
        self, event: telemetry_pb2.Event, index: int, batch_index: int, time_ns: int
    ) -> None:
        # Columns go through numpy as whole arrays: no Python object per point.
        columns = event.metric_columns
        indices = np.array(columns.name_indices, dtype=np.int64)
        times = np.array(columns.time_offsets_ns, dtype=np.int64) + time_ns
        values = np.array(columns.values, dtype=np.float64)
        order = np.argsort(indices, kind="stable")
        groups = np.split(order, np.flatnonzero(np.diff(indices[order])) + 1)
        for group in groups:
            name_index = int(indices[group[0]])
            name = columns.names[name_index]
            unit = columns.units[name_index] if columns.units else ""
            series = self._series_for(
                event.device_id,
                name,
                unit,
                ValueType.DOUBLE,
                index,
                "metric_columns.names[{}]",
                name_index,
            )
            series.column_parts.append(
                (
                    np.full(group.size, batch_index, np.int64),
                    times[group],
                    values[group],
                )
            )

    def _series_for(
        self,
        device_id: str,
        name: str,
        unit: str,
        value_type: ValueType | None,
        index: int,
        path_template: str,
        position: int,
    ) -> _Series:
        """Return the series of (device, name), checking its type and unit.

        ``value_type`` is None for a reading without a value, which fits a
        series of any type. ``path_template.format(position)`` is the field
        path for errors. It is built only when a check fails, since this runs
        for every metric.
        """
        series = self._series.get((device_id, name))
        if series is None:
            series = _Series(unit, value_type, index, index)
            self._series[(device_id, name)] = series
            return series
        if value_type is not None and value_type != series.value_type:
            _merge_type(series, name, value_type, index, path_template, position)
        if series.unit != unit:
            raise event_error(
                index,
                path_template.format(position),
                f"metric {name!r} has unit {unit!r} here but {series.unit!r} in "
                f"events[{series.first_index}]; send one unit per metric",
                name=name,
                unit=unit,
                other_unit=series.unit,
            )
        return series


def _merge_type(
    series: _Series,
    name: str,
    value_type: ValueType,
    index: int,
    path_template: str,
    position: int,
) -> None:
    """Give ``series`` the type of a reading whose type differs from it, or raise."""
    if series.value_type is None:
        series.value_type, series.type_index = value_type, index
    elif {series.value_type, value_type} == _NUMERIC:
        # The store accepts integers into a double series, so a batch that
        # mixes the two stores them all as doubles.
        series.value_type = ValueType.DOUBLE
    else:
        raise event_error(
            index,
            path_template.format(position),
            f"metric {name!r} is {value_type.name.lower()} here but "
            f"{series.value_type.name.lower()} in events[{series.type_index}]; "
            "send one value type per metric",
            reason="SERIES_TYPE_CONFLICT",
            name=name,
            value_type=value_type.name,
            other_value_type=series.value_type.name,
        )


def _series_points(device_id: str, name: str, series: _Series) -> MetricSeriesPoints:
    event_index = [np.array(series.point_event_index, dtype=np.int64)]
    time_ns = [np.array(series.point_time_ns, dtype=np.int64)]
    value_type = series.value_type or ValueType.DOUBLE
    point_values = _with_placeholders(series, value_type)
    values: Float64Array | Int64Array | list[str]
    if value_type == ValueType.STRING:
        values = [str(value) for value in point_values]
    elif value_type == ValueType.DOUBLE:
        parts = [np.array(point_values, dtype=np.float64)]
        parts.extend(part[2] for part in series.column_parts)
        values = np.concatenate(parts)
    else:
        # int64 for INT64, and 0 or 1 for BOOL.
        values = np.array(point_values, dtype=np.int64)
    event_index.extend(part[0] for part in series.column_parts)
    time_ns.extend(part[1] for part in series.column_parts)
    return MetricSeriesPoints(
        device_id=device_id,
        name=name,
        unit=series.unit,
        value_type=value_type,
        event_index=np.concatenate(event_index),
        time_ns=np.concatenate(time_ns),
        values=values,
        missing=_missing_mask(series),
    )


_PLACEHOLDERS: dict[ValueType, float | int | str] = {
    ValueType.DOUBLE: float("nan"),
    ValueType.INT64: 0,
    ValueType.BOOL: 0,
    ValueType.STRING: "",
}


def _with_placeholders(
    series: _Series, value_type: ValueType
) -> list[float | int | str | None]:
    """Return the metric-set values with a placeholder for each missing one."""
    if not any(series.point_missing):
        return series.point_values
    fill = _PLACEHOLDERS[value_type]
    return [fill if value is None else value for value in series.point_values]


def _missing_mask(series: _Series) -> npt.NDArray[np.bool_] | None:
    """Return the missing-reading mask over all points, or None if none is."""
    if not any(series.point_missing):
        return None
    columns = sum(len(part[0]) for part in series.column_parts)
    return np.concatenate(
        [np.array(series.point_missing, dtype=np.bool_), np.zeros(columns, np.bool_)]
    )


def _payload(event: telemetry_pb2.Event, body: str) -> bytes:
    """Serialise an event for storage, without the samples of a signal frame.

    The store keeps a frame's samples once, with the frame, so a frame up
    to the gRPC message limit is not held and written twice.
    """
    if body != "signal_frame":
        return bytes(event.SerializeToString())
    # Copying field by field leaves the samples behind, where CopyFrom would
    # copy them first.
    stripped = _copy_without(event, "signal_frame")
    stripped.signal_frame.CopyFrom(_copy_without(event.signal_frame, "samples"))
    return bytes(stripped.SerializeToString())


def _copy_without(message: MessageT, skipped: str) -> MessageT:
    copy = type(message)()
    for descriptor, value in message.ListFields():
        if descriptor.name == skipped:
            continue
        target = getattr(copy, descriptor.name)
        if descriptor.is_repeated:
            target.extend(value)
        elif descriptor.message_type is not None:
            target.CopyFrom(value)
        else:
            setattr(copy, descriptor.name, value)
    return copy


def _frame_record(
    event: telemetry_pb2.Event, batch_index: int, time_ns: int
) -> FrameRecord:
    frame = event.signal_frame
    channels = tuple(
        ChannelSpec(
            name=channel.name,
            unit=channel.unit,
            scale=channel.scale if channel.HasField("scale") else None,
            offset=channel.offset if channel.HasField("offset") else None,
        )
        for channel in frame.channels
    )
    layout = frame.layout or telemetry_pb2.SAMPLE_LAYOUT_INTERLEAVED
    return FrameRecord(
        event_index=batch_index,
        device_id=event.device_id,
        stream=frame.stream,
        start_time_ns=time_ns,
        sample_interval_ns=frame.sample_interval_ns,
        sample_count=frame.sample_count,
        encoding=frame.encoding,
        layout=layout,
        channels=channels,
        samples=frame.samples,
    )
