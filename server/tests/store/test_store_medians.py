"""Median intervals of a range, from SQL and frame metadata, equal numpy's."""

from __future__ import annotations

import statistics

import numpy as np
import pytest

from aetus.server import downsample
from aetus.server.records import ChannelSpec, ValueType
from aetus.server.store import EmbeddedStore
from aetus.server.store._reader import EXACT_MEDIAN_MAX_POINTS

MS = 1_000_000
S = 1_000_000_000
T0 = 1_714_564_800 * S
XY = tuple(ChannelSpec(name, "") for name in "xy")
X = XY[:1]


@pytest.mark.parametrize("count", [1, 2, 3, 4, 501, 1000])
def test_store_median_scalar_matches_numpy(store: EmbeddedStore, build, count) -> None:
    rng = np.random.default_rng(count)
    steps = rng.choice([1, 2, 2, 5, 400], size=count).astype(np.int64) * S
    # One interval beyond 2**53 ns, which a DOUBLE median would round.
    steps[count // 2] = 3 * 10**16 + 1
    times = T0 + np.cumsum(steps)
    store.write(build.scalar("m", times, np.zeros(count), ValueType.DOUBLE))
    stream = store.find_stream("dev-01", "m")

    for start, end in [(0, 2**62), (int(times[0]), int(times[-1])), (T0, T0 + 1)]:
        inside = times[(times >= start) & (times < end)]
        expected = downsample.median_interval_ns(inside)
        assert store.median_interval_ns(stream, "", start, end) == expected
    whole = store.median_interval_ns(stream, "", 0, 2**62)
    if count == 1:
        assert whole is None
    else:
        intervals = np.diff(times).tolist()
        low, high = statistics.median_low(intervals), statistics.median_high(intervals)
        assert whole == (low + high) // 2


def test_store_median_channel_matches_numpy(store: EmbeddedStore, build) -> None:
    frames, start = [], T0
    rng = np.random.default_rng(5)
    for index in range(40):
        count = int(rng.integers(1, 30))
        interval = int(rng.choice([10, 20])) * MS
        channels = X if index % 7 == 3 else XY
        samples = np.zeros(count * len(channels), dtype="<f4").tobytes()
        frames.append((start, interval, count, 1, 1, channels, samples))
        start += count * interval + int(rng.choice([0, 0, 5, 900])) * MS
    store.write(build.frames("imu", frames))
    stream = store.find_stream("dev-01", "imu")

    for name in "xy":
        times = np.concatenate(
            [
                first + np.arange(count, dtype=np.int64) * interval
                for first, interval, count, _, _, channels, _ in frames
                if name in [c.name for c in channels]
            ]
        )
        for low, high in [(0, len(times)), (3, 50), (17, 18), (100, len(times) - 9)]:
            start_ns = int(times[low])
            end_ns = int(times[high - 1]) + 1
            expected = downsample.median_interval_ns(times[low:high])
            got = store.median_interval_ns(stream, name, start_ns, end_ns)
            assert got == expected, (name, low, high)


@pytest.mark.parametrize("extra", [0, 1], ids=["exact-limit", "windowed"])
def test_store_median_scalar_limit_matches_numpy(
    store: EmbeddedStore, build, extra: int
) -> None:
    count = EXACT_MEDIAN_MAX_POINTS + extra
    rng = np.random.default_rng(count)
    steps = rng.choice([3, 4, 4, 4, 9], size=count).astype(np.int64) * MS
    times = T0 + np.cumsum(steps)
    store.write(
        build.scalar(
            "m", times, np.zeros(count), ValueType.DOUBLE, points_per_event=8192
        )
    )
    stream = store.find_stream("dev-01", "m")

    median = store.median_interval_ns(stream, "", 0, 2**62)

    assert median == downsample.median_interval_ns(times)
