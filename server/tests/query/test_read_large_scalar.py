"""Raw pages of a scalar stream too large for an exact median in DuckDB."""

from __future__ import annotations

import numpy as np

from aetus.query.v1 import query_service_pb2 as pb
from aetus.server import downsample
from aetus.server.records import ValueType
from aetus.server.services.query import MAX_MAX_POINTS
from aetus.server.store import EmbeddedStore
from aetus.server.store._reader import EXACT_MEDIAN_MAX_POINTS

MS = 1_000_000
T0 = 1_714_564_800 * 1_000_000_000
COUNT = 2_000_000
BATCHES = 4
# Point indices followed by a gap, with the gap's length in ms.
GAPS = {40: 30, 41: 9, 977: 400, 1_500: 25, 1_000_000: 60_000, 1_999_000: 7}


def write_large(store: EmbeddedStore, build) -> np.ndarray:
    """Store COUNT points 1 or 2 ms apart with GAPS; return their times."""
    rng = np.random.default_rng(11)
    steps = rng.choice([1, 1, 1, 2], size=COUNT).astype(np.int64) * MS
    for index, gap_ms in GAPS.items():
        steps[index + 1] = gap_ms * MS
    times = T0 + np.cumsum(steps)
    size = COUNT // BATCHES
    batches = [
        build.scalar(
            "flow",
            times[first : first + size],
            rng.normal(size=size),
            ValueType.DOUBLE,
            first_sequence=first,
            points_per_event=10_000,
        )
        for first in range(0, COUNT, size)
    ]
    results = store.write_many(batches)
    assert [result.accepted_count for result in results] == [size // 10_000] * BATCHES
    return times


def expected_markers(times: np.ndarray, median: int, first: int, stop: int) -> list:
    """Return the gap markers numpy places after points first to stop - 1."""
    following = times[first + 1 : stop + 1]
    before = times[first : len(following) + first]
    gaps = following - before > downsample.GAP_FACTOR * median
    return (before[gaps] + (following[gaps] - before[gaps]) // 2).tolist()


def page_markers(response: pb.ReadStreamResponse) -> list[int]:
    return [p.time.ToNanoseconds() for p in response.series[0].points if p.gap]


def test_read_large_scalar_exact_limit_covers_page() -> None:
    assert EXACT_MEDIAN_MAX_POINTS >= MAX_MAX_POINTS


async def test_read_large_scalar_pages_match_numpy(store, build, stub, auth) -> None:
    times = write_large(store, build)
    start_index, end_index = 30, 1_999_500
    request = pb.ReadStreamRequest(
        device_id="dev-01", stream="flow", max_points=1000, mode=pb.READ_MODE_RAW
    )
    request.start_time.FromNanoseconds(int(times[start_index]))
    request.end_time.FromNanoseconds(int(times[end_index]))
    inside = times[start_index:end_index]
    median = downsample.median_interval_ns(inside)
    assert median == MS

    first = await stub.ReadStream(request, metadata=auth)
    request.page_token = first.next_page_token
    second = await stub.ReadStream(request, metadata=auth)

    first_markers = expected_markers(times, median, start_index, start_index + 1000)
    second_markers = expected_markers(
        times, median, start_index + 1000, start_index + 2000
    )
    assert len(first_markers) == 3
    assert len(second_markers) == 1
    assert page_markers(first) == first_markers
    assert page_markers(second) == second_markers
    values = [p for p in first.series[0].points if not p.gap]
    assert [p.time.ToNanoseconds() for p in values] == inside[:1000].tolist()


def test_read_large_scalar_store_median(store: EmbeddedStore, build) -> None:
    times = write_large(store, build)
    stream = store.find_stream("dev-01", "flow")

    for start, end in [(0, 2**62), (int(times[10]), int(times[1_500_000]))]:
        inside = times[(times >= start) & (times < end)]
        expected = downsample.median_interval_ns(inside)
        assert store.median_interval_ns(stream, "", start, end) == expected
