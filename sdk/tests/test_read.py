"""read_stream and list_streams against the real server: numpy results, paging."""

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
