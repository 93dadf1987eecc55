"""Signal frames: every encoding and layout, scale and offset, summaries."""

from __future__ import annotations

import numpy as np
import pytest

from aetus.server import downsample
from aetus.server.records import ChannelSpec
from aetus.server.store import SAMPLED, EmbeddedStore, InvalidFrame

MS = 1_000_000
T0 = 1_714_564_800 * 1_000_000_000
DTYPES = {1: "<f4", 2: "<i2", 3: "<u2", 4: "<i4"}
CHANNELS = (
    ChannelSpec("x", "g", 1 / 2048, None),
    ChannelSpec("y", "g", None, None),
    ChannelSpec("t", "degC", 0.01, -40.0),
)


def raw_samples(encoding: int, count: int, seed: int) -> np.ndarray:
    """Random raw samples of shape (count, channels) spanning the type's range."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(DTYPES[encoding])
    if dtype.kind == "f":
        return rng.normal(0, 1000, (count, len(CHANNELS))).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(
        info.min, info.max, (count, len(CHANNELS)), endpoint=True
    ).astype(dtype)


def encode(raw: np.ndarray, layout: int) -> bytes:
    return raw.T.tobytes() if layout == 2 else raw.tobytes()


def expected(raw: np.ndarray) -> dict[str, np.ndarray]:
    result = {}
    for column, channel in enumerate(CHANNELS):
        values = raw[:, column].astype(np.float64)
        if channel.scale is not None:
            values = values * channel.scale
        if channel.offset is not None:
            values = values + channel.offset
        result[channel.name] = values
    return result


@pytest.mark.parametrize(
    "layout", [0, 1, 2], ids=["unspecified", "interleaved", "planar"]
)
@pytest.mark.parametrize(
    "encoding", [1, 2, 3, 4], ids=["float32", "int16", "uint16", "int32"]
)
def test_store_frames_round_trip(
    store: EmbeddedStore, build, encoding: int, layout: int
) -> None:
    raws = [raw_samples(encoding, 200, seed) for seed in range(3)]
    frames = [
        (
            T0 + i * 200 * 5 * MS,
            5 * MS,
            200,
            encoding,
            layout,
            CHANNELS,
            encode(raw, layout),
        )
        for i, raw in enumerate(raws)
    ]
    store.write(build.frames("imu/accel", frames))
    stream = store.find_stream("dev-01", "imu/accel")

    page = store.channel_page(stream, ["x", "y", "t"], T0, T0 + 10**12, 10_000)

    assert stream.kind == SAMPLED
    assert stream.point_count == 600
    assert stream.last_interval_ns == 5 * MS
    whole = {
        name: np.concatenate([expected(raw)[name] for raw in raws])
        for name in ("x", "y", "t")
    }
    for name in ("x", "y", "t"):
        assert page.values[name].tolist() == whole[name].tolist()
        assert page.times[name].tolist() == (T0 + np.arange(600) * 5 * MS).tolist()
    assert page.next_after_ns is None


def test_store_frame_page_cut(store: EmbeddedStore, build) -> None:
    raw = raw_samples(2, 100, 1)
    frames = [
        (T0 + i * 100 * MS, MS, 100, 2, 1, CHANNELS, encode(raw, 1)) for i in range(5)
    ]
    store.write(build.frames("s", frames))
    stream = store.find_stream("dev-01", "s")

    first = store.channel_page(stream, ["y"], T0 + 50 * MS, T0 + 10**12, 120)
    second = store.channel_page(
        stream, ["y"], first.next_after_ns + 1, T0 + 10**12, 1000
    )

    assert len(first.values["y"]) == 120
    assert first.times["y"][0] == T0 + 50 * MS
    assert first.next_after_ns == T0 + 169 * MS
    assert len(second.values["y"]) == 450 - 120
    assert second.next_after_ns is None
    assert store.count_samples(stream, T0 + 50 * MS, T0 + 10**12) == 450


def test_store_frame_envelope_matches_decoded(store: EmbeddedStore, build) -> None:
    raws = [raw_samples(1, 100, seed) for seed in range(40)]
    raws[7][13, 0] = np.nan
    raws[8][:, 0] = np.nan
    frames = [
        (T0 + i * 100 * MS, MS, 100, 1, 2, CHANNELS, encode(raw, 2))
        for i, raw in enumerate(raws)
    ]
    store.write(build.frames("s", frames))
    stream = store.find_stream("dev-01", "s")
    channel = next(c for c in stream.channels if c.name == "x")
    times = T0 + np.arange(4000, dtype=np.int64) * MS
    values = np.concatenate([expected(raw)["x"] for raw in raws])
    edges = downsample.equal_width_edges(T0 + 30 * MS, T0 + 3990 * MS, 13)

    stored = store.channel_envelope(stream, channel, edges)
    reference = downsample.envelope(times, values, edges)

    assert stored.count.tolist() == reference.count.tolist()
    assert stored.finite_count.tolist() == reference.finite_count.tolist()
    assert stored.minimum.tolist() == reference.minimum.tolist()
    assert stored.maximum.tolist() == reference.maximum.tolist()
    assert stored.min_time_ns.tolist() == reference.min_time_ns.tolist()
    assert stored.max_time_ns.tolist() == reference.max_time_ns.tolist()
    assert stored.first.tolist() == reference.first.tolist()
    assert stored.last_time_ns.tolist() == reference.last_time_ns.tolist()
    np.testing.assert_allclose(stored.mean, reference.mean, rtol=1e-12)


def test_store_invalid_frame_stores_nothing(store: EmbeddedStore, build) -> None:
    good = encode(raw_samples(2, 10, 0), 1)
    frames = [
        (T0, MS, 10, 2, 1, CHANNELS, good),
        (T0 + 10 * MS, MS, 10, 2, 1, CHANNELS, good[:-1]),
    ]

    with pytest.raises(InvalidFrame, match="expected 60"):
        store.write(build.frames("s", frames))

    assert store.find_stream("dev-01", "s") is None
    assert store.list_streams("dev-01") == []


def test_store_frames_dedup(store: EmbeddedStore, build) -> None:
    data = encode(raw_samples(4, 10, 0), 1)
    batch = build.frames("s", [(T0, MS, 10, 4, 1, CHANNELS, data)])

    store.write(batch)
    retry = store.write(build.frames("s", [(T0, MS, 10, 4, 1, CHANNELS, data)]))

    stream = store.find_stream("dev-01", "s")
    assert retry.duplicate_count == 1
    assert stream.point_count == 10
    assert len(store.read_frames(stream, T0, T0 + 10**12)) == 1
