"""Signal frames from numpy arrays: encoding from the dtype, split to fit a message."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from aetus.sdk._events import _event_limit, new_event
from aetus.sdk._identity import DeviceIdentity
from aetus.sdk._times import TimeLike, timestamp_from_ns
from aetus.telemetry.v1 import telemetry_pb2

# Sample encoding for each accepted dtype. Any byte order is accepted; the
# samples are sent little-endian.
ENCODING_BY_DTYPE: dict[np.dtype[np.generic], telemetry_pb2.SampleEncoding] = {
    np.dtype(np.float32): telemetry_pb2.SAMPLE_ENCODING_FLOAT32_LE,
    np.dtype(np.int16): telemetry_pb2.SAMPLE_ENCODING_INT16_LE,
    np.dtype(np.uint16): telemetry_pb2.SAMPLE_ENCODING_UINT16_LE,
    np.dtype(np.int32): telemetry_pb2.SAMPLE_ENCODING_INT32_LE,
}
_ACCEPTED = "float32, int16, uint16, int32 (float64 is converted to float32)"
_LAYOUTS: dict[str, telemetry_pb2.SampleLayout] = {
    "interleaved": telemetry_pb2.SAMPLE_LAYOUT_INTERLEAVED,
    "planar": telemetry_pb2.SAMPLE_LAYOUT_PLANAR,
}
_FLOAT32_MAX = float(np.finfo(np.float32).max)
# Room for the varint growth of fields that differ between split frames.
_SPLIT_MARGIN_BYTES = 64
_NS_PER_S = 1_000_000_000


class DowncastWarning(UserWarning):
    """float64 samples were converted to float32, losing precision."""


@dataclass(frozen=True, slots=True)
class Channel:
    """One channel of a signal frame; the decoded value is raw * scale + offset.

    Attributes:
        name: Channel name, such as ``x``.
        unit: Unit of the decoded value, such as ``g``.
        scale: Factor applied to the raw sample; 1 when None.
        offset: Term added after scaling; 0 when None.
    """

    name: str
    unit: str = ""
    scale: float | None = None
    offset: float | None = None


def infer_encoding(dtype: np.dtype[np.generic] | type) -> telemetry_pb2.SampleEncoding:
    """Return the SampleEncoding number for a numpy dtype.

    Raises:
        ValueError: The dtype has no encoding; the message names the accepted
            ones.
    """
    resolved = np.dtype(dtype)
    native = resolved.newbyteorder("=") if resolved.byteorder in "<>" else resolved
    try:
        return ENCODING_BY_DTYPE[native]
    except KeyError:
        raise ValueError(
            f"samples have dtype {resolved}, which has no sample encoding; "
            f"use {_ACCEPTED}, for example samples.astype(np.float32)"
        ) from None


def build_signal_frames(
    identity: DeviceIdentity,
    stream: str,
    samples: object,
    *,
    channels: Sequence[str | Channel],
    sample_interval_ns: int | None = None,
    sample_rate_hz: float | None = None,
    time: TimeLike | None = None,
    uptime_ms: int | None = None,
    layout: str = "interleaved",
    max_message_bytes: int | None = None,
) -> list[telemetry_pb2.Event]:
    """Build signal-frame events from an array of shape (samples, channels).

    The encoding follows the dtype: float32, int16, uint16 or int32. float64
    is converted to float32 with a DowncastWarning. Samples that do not fit
    in one message are split into consecutive frames. Each frame gets its own
    sequence and starts where the previous one ended.

    Args:
        identity: Numbers the events.
        stream: Stream name, such as ``imu/accel``.
        samples: Array of shape (samples,) for one channel, or (samples,
            channels).
        channels: Channel names, or Channel objects with unit, scale and
            offset, one per column of ``samples``.
        sample_interval_ns: Nanoseconds between samples of one channel.
        sample_rate_hz: Samples per second per channel; the interval is
            rounded to whole nanoseconds. Give this or sample_interval_ns.
        time: Time of the first sample. Default: now.
        uptime_ms: Milliseconds since boot at the first sample.
        layout: ``interleaved`` (sample 0 of every channel first) or ``planar``.
        max_message_bytes: Message limit each frame must fit. Default: the
            client setting (AETUS_MAX_MESSAGE_BYTES).

    Returns:
        One or more events.

    Raises:
        ValueError: An unsupported dtype, a bad shape, a channel count that
            does not match, a bad interval, or a single sample row that does
            not fit the message limit.
    """
    if not stream:
        raise ValueError("stream is empty; pass a name such as 'imu/accel'")
    array = _as_sample_matrix(samples)
    specs = _channel_specs(channels, array.shape[1])
    interval_ns = _interval_ns(sample_interval_ns, sample_rate_hz)
    frame = telemetry_pb2.SignalFrame(
        stream=stream,
        sample_interval_ns=interval_ns,
        encoding=infer_encoding(array.dtype),
        layout=_LAYOUTS[layout] if layout in _LAYOUTS else _bad_layout(layout),
        channels=specs,
    )

    rows = _rows_per_frame(identity, frame, array, max_message_bytes)
    starts = range(0, array.shape[0], rows)
    events = new_event(
        identity, time=time, uptime_ms=uptime_ms, sequence_count=len(starts)
    )
    for event, first_row in zip(events, starts, strict=True):
        chunk = array[first_row : first_row + rows]
        _shift_start(event, first_row * interval_ns, uptime_ms is not None)
        body = event.signal_frame
        body.CopyFrom(frame)
        body.sample_count = chunk.shape[0]
        body.samples = _to_bytes(chunk, body.layout)
    return events


def _as_sample_matrix(samples: object) -> np.ndarray:
    array = np.asarray(samples)
    if array.ndim == 1:
        array = array.reshape(-1, 1)
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(
            f"samples have shape {array.shape}; pass shape (samples,) or "
            "(samples, channels) with at least one sample"
        )
    if array.dtype == np.float64:
        array = _downcast(array)
    infer_encoding(array.dtype)
    return array.astype(array.dtype.newbyteorder("<"), copy=False)


def _downcast(array: np.ndarray) -> np.ndarray:
    finite = array[np.isfinite(array)]
    if finite.size and float(np.abs(finite).max()) > _FLOAT32_MAX:
        raise ValueError(
            f"float64 samples reach {float(np.abs(finite).max())!r}, beyond the "
            f"float32 range of {_FLOAT32_MAX!r}; scale them or send int32 with "
            "a channel scale"
        )
    warnings.warn(
        "float64 samples are sent as float32, with about 7 significant digits; "
        "pass float32 samples to avoid this conversion",
        DowncastWarning,
        stacklevel=4,
    )
    return array.astype(np.float32)


def _channel_specs(
    channels: Sequence[str | Channel], count: int
) -> list[telemetry_pb2.SignalChannel]:
    if isinstance(channels, str):
        raise ValueError(
            f"channels={channels!r} is a single string; pass a list of names"
        )
    if len(channels) != count:
        raise ValueError(
            f"{len(channels)} channel name(s) given for samples with {count} "
            "column(s); pass one name per column"
        )
    specs = []
    for item in channels:
        spec = Channel(item) if isinstance(item, str) else item
        if not spec.name:
            raise ValueError("a channel name is empty; name every channel")
        message = telemetry_pb2.SignalChannel(name=spec.name, unit=spec.unit)
        if spec.scale is not None:
            message.scale = spec.scale
        if spec.offset is not None:
            message.offset = spec.offset
        specs.append(message)
    return specs


def _interval_ns(interval_ns: int | None, rate_hz: float | None) -> int:
    if (interval_ns is None) == (rate_hz is None):
        raise ValueError("pass exactly one of sample_interval_ns and sample_rate_hz")
    if rate_hz is not None:
        if not rate_hz > 0:
            raise ValueError(f"sample_rate_hz={rate_hz!r} must be greater than 0")
        interval_ns = round(_NS_PER_S / rate_hz)
    assert interval_ns is not None
    if interval_ns <= 0:
        raise ValueError(
            f"sample interval {interval_ns} ns must be at least 1 ns; "
            "check sample_interval_ns or sample_rate_hz"
        )
    return interval_ns


def _bad_layout(layout: str) -> telemetry_pb2.SampleLayout:
    raise ValueError(f"layout={layout!r} is not valid; use one of {sorted(_LAYOUTS)}")


def _rows_per_frame(
    identity: DeviceIdentity,
    frame: telemetry_pb2.SignalFrame,
    array: np.ndarray,
    max_message_bytes: int | None,
) -> int:
    limit = _event_limit(max_message_bytes)
    probe = telemetry_pb2.Event(
        device_id=identity.device_id,
        boot_id=identity.boot_id,
        sequence=2**64 - 1,
        uptime_ms=2**64 - 1,
        firmware_version=identity.firmware_version,
        time_source=telemetry_pb2.TIME_SOURCE_SYNCED,
    )
    probe.signal_frame.CopyFrom(frame)
    probe.signal_frame.sample_count = 2**32 - 1
    overhead = probe.ByteSize() + _SPLIT_MARGIN_BYTES
    row_bytes = array.shape[1] * array.dtype.itemsize
    rows = (limit - overhead) // row_bytes
    if rows < 1:
        raise ValueError(
            f"one sample row of {array.shape[1]} channel(s) needs {row_bytes} bytes "
            f"plus {overhead} bytes of frame fields, over the message limit of "
            f"{limit} bytes per event; send fewer channels per frame or raise "
            "max_message_bytes"
        )
    return int(rows)


def _shift_start(event: telemetry_pb2.Event, offset_ns: int, has_uptime: bool) -> None:
    # Every split frame starts as a copy of the first one's times.
    if event.HasField("time"):
        start_ns = event.time.ToNanoseconds() + offset_ns
        event.time.CopyFrom(timestamp_from_ns(start_ns))
    if has_uptime:
        event.uptime_ms += offset_ns // 1_000_000


def _to_bytes(chunk: np.ndarray, layout: int) -> bytes:
    if layout == telemetry_pb2.SAMPLE_LAYOUT_PLANAR:
        return np.ascontiguousarray(chunk.T).tobytes()
    return np.ascontiguousarray(chunk).tobytes()
