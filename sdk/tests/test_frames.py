"""Signal frames from numpy arrays: dtype inference, warnings, splitting."""

import warnings

import numpy as np
import pytest

from aetus.sdk import (
    Channel,
    DeviceIdentity,
    DowncastWarning,
    build_signal_frames,
    infer_encoding,
)
from aetus.telemetry.v1 import telemetry_pb2

START_NS = 1_714_564_800_000_000_000


@pytest.mark.parametrize(
    ("dtype", "encoding"),
    [
        (np.float32, telemetry_pb2.SAMPLE_ENCODING_FLOAT32_LE),
        (np.int16, telemetry_pb2.SAMPLE_ENCODING_INT16_LE),
        (np.uint16, telemetry_pb2.SAMPLE_ENCODING_UINT16_LE),
        (np.int32, telemetry_pb2.SAMPLE_ENCODING_INT32_LE),
        (">f4", telemetry_pb2.SAMPLE_ENCODING_FLOAT32_LE),
        (">i2", telemetry_pb2.SAMPLE_ENCODING_INT16_LE),
    ],
    ids=["float32", "int16", "uint16", "int32", "float32-big-endian", "int16-big"],
)
def test_frames_encoding_follows_dtype(dtype: str, encoding: int) -> None:
    samples = np.array([[1, 2], [3, 4], [5, 6]], dtype=dtype)

    (event,) = build_signal_frames(
        DeviceIdentity("dev-01"),
        "imu/accel",
        samples,
        channels=["x", "y"],
        sample_interval_ns=1_000_000,
        time=START_NS,
    )

    frame = event.signal_frame
    assert infer_encoding(np.dtype(dtype)) == encoding
    assert frame.encoding == encoding
    assert frame.sample_count == 3
    assert frame.layout == telemetry_pb2.SAMPLE_LAYOUT_INTERLEAVED
    little = np.dtype(dtype).newbyteorder("<")
    assert np.frombuffer(frame.samples, little).tolist() == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize(
    "dtype",
    ["int8", "uint8", "uint32", "int64", "uint64", "float16", "bool", "complex64"],
)
def test_frames_reject_other_dtypes(dtype: str) -> None:
    with pytest.raises(ValueError) as info:
        build_signal_frames(
            DeviceIdentity("dev-01"),
            "s",
            np.zeros(4, dtype=dtype),
            channels=["x"],
            sample_interval_ns=1,
        )

    message = str(info.value)
    assert f"dtype {np.dtype(dtype)}" in message
    assert "float32, int16, uint16, int32" in message


def test_frames_float64_downcast_warns() -> None:
    samples = np.array([0.1, 0.2, 0.3], dtype=np.float64)

    with pytest.warns(DowncastWarning, match="float64 samples are sent as float32"):
        (event,) = build_signal_frames(
            DeviceIdentity("dev-01"), "s", samples, channels=["x"], sample_rate_hz=100
        )

    frame = event.signal_frame
    assert frame.encoding == telemetry_pb2.SAMPLE_ENCODING_FLOAT32_LE
    decoded = np.frombuffer(frame.samples, "<f4")
    np.testing.assert_allclose(decoded, samples, rtol=1e-7)
    assert frame.sample_interval_ns == 10_000_000


def test_frames_float64_warning_points_at_caller() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        build_signal_frames(
            DeviceIdentity("d"), "s", np.zeros(2), channels=["x"], sample_interval_ns=1
        )

    assert len(caught) == 1
    assert caught[0].filename == __file__


def test_frames_float64_beyond_float32_range_rejected() -> None:
    with pytest.raises(ValueError, match="beyond the float32 range"):
        build_signal_frames(
            DeviceIdentity("d"),
            "s",
            np.array([1e39]),
            channels=["x"],
            sample_interval_ns=1,
        )


def test_frames_channel_metadata() -> None:
    channels = [Channel("x", "g", scale=0.001, offset=-1.5), "y"]

    (event,) = build_signal_frames(
        DeviceIdentity("d"),
        "imu/accel",
        np.zeros((2, 2), np.int16),
        channels=channels,
        sample_interval_ns=5,
    )

    first, second = event.signal_frame.channels
    assert (first.name, first.unit, first.scale, first.offset) == (
        "x",
        "g",
        0.001,
        -1.5,
    )
    assert first.HasField("scale")
    assert second.name == "y"
    assert not second.HasField("scale")
    assert not second.HasField("offset")


def test_frames_planar_layout() -> None:
    samples = np.array([[1, 10], [2, 20], [3, 30]], np.int32)

    (event,) = build_signal_frames(
        DeviceIdentity("d"),
        "s",
        samples,
        channels=["a", "b"],
        sample_interval_ns=1,
        layout="planar",
    )

    assert event.signal_frame.layout == telemetry_pb2.SAMPLE_LAYOUT_PLANAR
    assert np.frombuffer(event.signal_frame.samples, "<i4").tolist() == [
        1,
        2,
        3,
        10,
        20,
        30,
    ]


@pytest.mark.parametrize(
    ("samples", "channels", "interval", "rate", "match"),
    [
        (np.zeros((0, 1), np.float32), ["x"], 1, None, "at least one sample"),
        (np.zeros((2, 2, 2), np.float32), ["x"], 1, None, "shape"),
        (np.zeros((2, 2), np.float32), ["x"], 1, None, "1 channel name"),
        (np.zeros(2, np.float32), "x", 1, None, "single string"),
        (np.zeros(2, np.float32), ["x"], None, None, "exactly one"),
        (np.zeros(2, np.float32), ["x"], 1, 10.0, "exactly one"),
        (np.zeros(2, np.float32), ["x"], 0, None, "at least 1 ns"),
        (np.zeros(2, np.float32), ["x"], None, -5.0, "greater than 0"),
        (np.zeros(2, np.float32), [""], 1, None, "channel name is empty"),
    ],
    ids=[
        "no-samples",
        "three-dims",
        "channel-count",
        "string-channels",
        "no-interval",
        "two-intervals",
        "zero-interval",
        "negative-rate",
        "empty-channel-name",
    ],
)
def test_frames_bad_input_rejected(
    samples: np.ndarray,
    channels: list[str],
    interval: int | None,
    rate: float | None,
    match: str,
) -> None:
    with pytest.raises(ValueError, match=match):
        build_signal_frames(
            DeviceIdentity("d"),
            "s",
            samples,
            channels=channels,
            sample_interval_ns=interval,
            sample_rate_hz=rate,
        )


def test_frames_split_to_fit_message_limit() -> None:
    identity = DeviceIdentity("dev-01")
    samples = np.arange(10_000, dtype=np.float32).reshape(-1, 2)

    events = build_signal_frames(
        identity,
        "vib",
        samples,
        channels=["a", "b"],
        sample_interval_ns=1_000,
        time=START_NS,
        uptime_ms=5_000,
        max_message_bytes=8_192,
    )

    assert len(events) > 1
    assert all(event.ByteSize() <= 8_192 - 22 for event in events)
    assert [event.sequence for event in events] == list(range(len(events)))
    assert identity.next_sequence == len(events)
    counts = [event.signal_frame.sample_count for event in events]
    assert sum(counts) == 5_000
    starts = [event.time.ToNanoseconds() for event in events]
    expected = START_NS + np.cumsum([0, *counts[:-1]]) * 1_000
    assert starts == expected.tolist()
    assert events[1].uptime_ms == 5_000 + counts[0] * 1_000 // 1_000_000
    joined = b"".join(event.signal_frame.samples for event in events)
    assert np.frombuffer(joined, "<f4").tolist() == samples.ravel().tolist()


def test_frames_row_over_limit_rejected() -> None:
    with pytest.raises(ValueError, match="over the message limit of"):
        build_signal_frames(
            DeviceIdentity("d"),
            "s",
            np.zeros((1, 400), np.float32),
            channels=[f"c{i}" for i in range(400)],
            sample_interval_ns=1,
            max_message_bytes=1_024,
        )
