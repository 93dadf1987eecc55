"""read_stream and list_streams against the real server: numpy results, paging."""

import math

import numpy as np
import pytest

from aetus.query.v1 import query_service_pb2
from aetus.sdk import (
    AsyncClient,
    DeviceIdentity,
    EnvelopeSeries,
    NotFoundError,
    Series,
    build_metrics,
    build_signal_frames,
)

START_NS = 1_714_564_800_000_000_000


async def test_read_scalar_stream_raw(client: AsyncClient) -> None:
    identity = DeviceIdentity("dev-01")
    values = [20.0, 0.0, float("nan"), -5.5]
    await client.send_events(
        [
            build_metrics(
                identity,
                {"env/temp": value},
                units={"env/temp": "degC"},
                time=START_NS + i * 1_000_000_000,
            )
            for i, value in enumerate(values)
        ]
    )

    data = await client.read_stream("dev-01", "env/temp", mode="raw")

    series = data[""]
    assert isinstance(series, Series)
    assert data.mode == "raw"
    assert data.stream.kind == query_service_pb2.STREAM_KIND_SCALAR
    assert series.unit == "degC"
    assert series.times.dtype == np.dtype("datetime64[ns]")
    assert series.times_ns.tolist() == [START_NS + i * 10**9 for i in range(4)]
    assert series.values.dtype == np.float64
    np.testing.assert_array_equal(series.values, np.array(values))
    assert not series.gaps.any()


@pytest.mark.parametrize(
    ("value", "dtype"),
    [(7, np.int64), (True, np.bool_), ("warming", object)],
    ids=["int", "bool", "string"],
)
async def test_read_scalar_value_types(
    client: AsyncClient, value: object, dtype: type
) -> None:
    await client.send_events(
        [build_metrics(DeviceIdentity("dev-01"), {"m": value}, time=START_NS)]  # type: ignore[dict-item]  # table of types
    )

    data = await client.read_stream("dev-01", "m", mode="raw")

    assert data[""].values.dtype == np.dtype(dtype)
    assert data[""].values.tolist() == [value]


async def test_read_raw_follows_page_tokens(client: AsyncClient) -> None:
    identity = DeviceIdentity("dev-01")
    events = [
        build_metrics(identity, {"n": i}, time=START_NS + i * 1_000_000)
        for i in range(250)
    ]
    await client.send_events(events)

    data = await client.read_stream("dev-01", "n", mode="raw", max_points=100)

    assert data[""].values.tolist() == list(range(250))
    assert data.source_point_count == 250


async def test_read_signal_channels_and_envelope(client: AsyncClient) -> None:
    identity = DeviceIdentity("dev-01")
    samples = np.stack([np.arange(1_000), -np.arange(1_000)], axis=1).astype(np.int16)
    events = build_signal_frames(
        identity,
        "imu/accel",
        samples,
        channels=["x", "y"],
        sample_rate_hz=1_000,
        time=START_NS,
    )
    await client.send_events(events)

    raw = await client.read_stream("dev-01", "imu/accel", mode="raw", channels=["y"])
    envelope = await client.read_stream(
        "dev-01", "imu/accel", mode="envelope", max_points=20
    )

    assert list(raw.series) == ["y"]
    assert raw["y"].values.tolist() == (-np.arange(1_000)).tolist()
    assert raw["y"].times_ns[1] - raw["y"].times_ns[0] == 1_000_000
    assert envelope.mode == "envelope"
    assert set(envelope.series) == {"x", "y"}
    x = envelope["x"]
    assert isinstance(x, EnvelopeSeries)
    assert 0 < len(x) <= 10
    assert np.nanmin(x.mins) == 0
    assert np.nanmax(x.maxs) == 999
    assert int(x.counts.sum()) == 1_000


async def test_read_stream_time_range(client: AsyncClient) -> None:
    identity = DeviceIdentity("dev-01")
    await client.send_events(
        [
            build_metrics(identity, {"n": i}, time=START_NS + i * 10**9)
            for i in range(10)
        ]
    )

    data = await client.read_stream(
        "dev-01",
        "n",
        mode="raw",
        start_time=np.datetime64(START_NS + 2 * 10**9, "ns"),
        end_time=START_NS + 5 * 10**9,
    )

    assert data[""].values.tolist() == [2, 3, 4]


async def test_list_streams(client: AsyncClient) -> None:
    identity = DeviceIdentity("dev-01")
    await client.send_events(
        [build_metrics(identity, {"b": 1.0, "a": 2}, time=START_NS)]
    )

    streams = await client.list_streams("dev-01")

    assert [stream.name for stream in streams] == ["a", "b"]
    assert streams[0].value_type == query_service_pb2.VALUE_TYPE_INT64


async def test_read_unknown_stream_not_found(client: AsyncClient) -> None:
    await client.send_events([build_metrics(DeviceIdentity("dev-01"), {"a": 1.0})])

    with pytest.raises(NotFoundError):
        await client.read_stream("dev-01", "missing")


async def test_read_bad_mode_rejected(client: AsyncClient) -> None:
    with pytest.raises(ValueError, match="mode='fast' is not valid"):
        await client.read_stream("dev-01", "a", mode="fast")  # type: ignore[arg-type]  # deliberately wrong


# Readings one second apart, then a 20 s silence the server marks with a gap
# marker. None is a missing reading; each list starts with a value, so the
# stream takes that value's type.
MISSING_CASES = {
    "double": [1.5, None, float("nan"), 0.0, None, -2.5, 4.0],
    "int": [7, None, 0, -3, None, 5, 9],
    "bool": [True, None, False, True, None, False, True],
    "string": ["warming", None, "", "ready", None, "idle", "off"],
}
MISSING_OFFSETS_S = [0, 1, 2, 3, 4, 5, 25]


def _send_times() -> list[int]:
    return [START_NS + offset * 10**9 for offset in MISSING_OFFSETS_S]


def _is_nan(value: object) -> bool:
    return isinstance(value, float) and math.isnan(value)


@pytest.mark.parametrize("case", list(MISSING_CASES))
async def test_read_missing_readings_and_gaps_masked(
    client: AsyncClient, case: str
) -> None:
    identity = DeviceIdentity("dev-01")
    sent = MISSING_CASES[case]
    await client.send_events(
        [
            build_metrics(identity, {"m": value}, time=time_ns)
            for value, time_ns in zip(sent, _send_times(), strict=True)
        ]
    )

    series = (await client.read_stream("dev-01", "m", mode="raw"))[""]

    assert isinstance(series, Series)
    points = ~series.gaps
    assert series.times_ns[points].tolist() == _send_times()
    assert series.missing[points].tolist() == [value is None for value in sent]
    assert not (series.missing & series.gaps).any()
    assert series.gaps.sum() == 1
    gap_ns = int(series.times_ns[series.gaps][0])
    assert _send_times()[-2] < gap_ns < _send_times()[-1]
    expected = [value for value in sent if value is not None]
    stored_values = series.values[series.readings].tolist()
    assert len(stored_values) == len(expected)
    for value, stored in zip(expected, stored_values, strict=True):
        assert stored == value or (_is_nan(value) and _is_nan(stored))


async def test_read_missing_double_distinct_from_stored_nan(
    client: AsyncClient,
) -> None:
    identity = DeviceIdentity("dev-01")
    sent = MISSING_CASES["double"]
    await client.send_events(
        [
            build_metrics(identity, {"m": value}, time=time_ns)
            for value, time_ns in zip(sent, _send_times(), strict=True)
        ]
    )

    series = (await client.read_stream("dev-01", "m", mode="raw"))[""]

    stored_nan = np.isnan(series.values) & series.readings
    assert stored_nan.sum() == sum(1 for value in sent if _is_nan(value))
    assert np.isnan(series.values[series.missing]).all()
    assert np.isnan(series.values[series.gaps]).all()
    masked = series.masked_values()
    assert masked.mask.tolist() == (series.missing | series.gaps).tolist()
    assert masked.count() == sum(1 for value in sent if value is not None)


async def test_read_missing_reading_first_in_new_stream(client: AsyncClient) -> None:
    identity = DeviceIdentity("dev-01")
    await client.send_events(
        [
            build_metrics(identity, {"m": None}, time=START_NS),
            build_metrics(identity, {"m": 2.0}, time=START_NS + 10**9),
        ]
    )

    data = await client.read_stream("dev-01", "m", mode="raw")

    assert data.stream.value_type == query_service_pb2.VALUE_TYPE_DOUBLE
    assert data[""].missing.tolist() == [True, False]
    assert data[""].values[1] == 2.0


async def test_read_envelope_counts_missing_readings(client: AsyncClient) -> None:
    identity = DeviceIdentity("dev-01")
    sent = MISSING_CASES["double"]
    await client.send_events(
        [
            build_metrics(identity, {"m": value}, time=time_ns)
            for value, time_ns in zip(sent, _send_times(), strict=True)
        ]
    )

    data = await client.read_stream("dev-01", "m", mode="envelope", max_points=4)

    envelope = data[""]
    assert isinstance(envelope, EnvelopeSeries)
    assert int(envelope.counts.sum()) == len(sent)
    finite = [value for value in sent if value is not None and not _is_nan(value)]
    assert np.nanmin(envelope.mins) == min(finite)
    assert np.nanmax(envelope.maxs) == max(finite)
