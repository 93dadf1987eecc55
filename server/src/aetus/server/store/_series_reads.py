"""Reads that reduce a stream: envelopes and pages of decoded channel samples."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt

from aetus.server import downsample
from aetus.server.records import ValueType
from aetus.server.store import _frame_scan, _reader
from aetus.server.store._reader import ChannelInfo, StreamInfo

Int64Array = npt.NDArray[np.int64]
Float64Array = npt.NDArray[np.float64]

# Most grid cells DuckDB aggregates a scalar envelope into.
MAX_SQL_BUCKETS = 1_000_000
# Points held in memory at once when a scalar envelope is reduced in numpy.
CHUNK_POINTS = 200_000
# Decoded samples held at once while split frames are reduced to buckets.
# Each sample takes about 100 bytes as items and reduction temporaries.
ENVELOPE_CHUNK_SAMPLES = 1 << 16


@dataclass(frozen=True, slots=True)
class ChannelPage:
    """Decoded samples of the channels read, cut at a common time.

    ``next_after_ns`` is the time of the last sample in the page when more
    samples follow in the range, else None. ``next_time_ns`` gives, per
    channel, the time of its first sample after the page within the range,
    or None when the page contains the channel's last one.
    """

    times: dict[str, Int64Array]
    values: dict[str, Float64Array]
    next_after_ns: int | None
    next_time_ns: dict[str, int | None]


def scalar_envelope(
    db: duckdb.DuckDBPyConnection, stream: StreamInfo, edges: Int64Array
) -> downsample.Envelope:
    """Reduce a numeric scalar stream to the buckets between ``edges``.

    DuckDB aggregates the points into sub-buckets on a regular grid that has
    a line at every edge (the bucket width itself for equal buckets, one hour
    for calendar days in most zones), and numpy merges the sub-buckets. So
    memory depends on the bucket count, not on the number of points. When no
    grid of at most MAX_SQL_BUCKETS cells fits the edges, the points are read
    and reduced in chunks instead.

    NOTE: when several points in a cell share its minimum or maximum,
    DuckDB's arg_min and arg_max return the time of any one of them, not
    always the earliest as the numpy path does.
    """
    grid = _grid(edges)
    if grid is None:
        return _chunked_envelope(db, stream, edges)
    origin = int(edges[1]) - -(-(int(edges[1]) - int(edges[0])) // grid) * grid
    value = (
        "value_double"
        if stream.value_type == ValueType.DOUBLE
        else "CAST(value_int AS DOUBLE)"
    )
    finite = "FILTER (WHERE isfinite(v))"
    columns = db.execute(
        f"SELECT min(time_ns) AS placed, count(*) AS n, count(*) {finite} AS nf, "
        f"min(v) {finite} AS lo, arg_min(time_ns, v) {finite} AS lo_t, "
        f"max(v) {finite} AS hi, arg_max(time_ns, v) {finite} AS hi_t, "
        f"arg_min(v, time_ns) {finite} AS first, min(time_ns) {finite} AS first_t, "
        f"arg_max(v, time_ns) {finite} AS last, max(time_ns) {finite} AS last_t, "
        f"sum(v) {finite} AS total FROM (SELECT time_ns, {value} AS v FROM points "
        "WHERE series_key = ? AND time_ns >= ? AND time_ns < ?) "
        "GROUP BY (time_ns - ?) // ?",
        [stream.key, int(edges[0]), int(edges[-1]), origin, grid],
    ).fetchnumpy()
    return downsample.reduce_items(_grid_items(columns), edges)


def _grid(edges: Int64Array) -> int | None:
    """Return the widest grid step that puts a line on every inner edge."""
    span = int(edges[-1]) - int(edges[0])
    if len(edges) <= 2:
        return max(1, span)
    step = int(np.gcd.reduce(np.diff(edges[1:-1]))) if len(edges) > 3 else span
    step = max(1, step)
    return step if span // step <= MAX_SQL_BUCKETS else None


def _grid_items(columns: dict[str, Any]) -> downsample.Items:
    def ints(name: str) -> Int64Array:
        return np.asarray(np.ma.filled(columns[name], 0), dtype=np.int64)

    def floats(name: str) -> Float64Array:
        return np.asarray(np.ma.filled(columns[name], np.nan), dtype=np.float64)

    return downsample.Items(
        time_ns=ints("placed"),
        count=ints("n"),
        finite_count=ints("nf"),
        minimum=floats("lo"),
        min_time_ns=ints("lo_t"),
        maximum=floats("hi"),
        max_time_ns=ints("hi_t"),
        first=floats("first"),
        first_time_ns=ints("first_t"),
        last=floats("last"),
        last_time_ns=ints("last_t"),
        total=np.nan_to_num(floats("total")),
    )


def _chunked_envelope(
    db: duckdb.DuckDBPyConnection, stream: StreamInfo, edges: Int64Array
) -> downsample.Envelope:
    """Reduce a scalar stream by reading its points in bounded chunks."""
    total = _reader.count_points(db, stream.key, int(edges[0]), int(edges[-1]))
    chunks = max(1, -(-total // CHUNK_POINTS))
    bounds = np.unique(np.linspace(0, len(edges) - 1, chunks + 1).astype(np.int64))
    parts = []
    for low, high in itertools.pairwise(bounds):
        sub_edges = edges[low : high + 1]
        page = _reader.read_points(
            db, stream.key, stream.value_type, int(sub_edges[0]), int(sub_edges[-1])
        )
        values = np.asarray(page.values, dtype=np.float64)
        parts.append(downsample.envelope(page.time_ns, values, sub_edges).as_items())
    return downsample.reduce_items(downsample.concat_items(parts), edges)


def channel_envelope(
    db: duckdb.DuckDBPyConnection,
    stream: StreamInfo,
    channel: ChannelInfo,
    edges: Int64Array,
) -> downsample.Envelope:
    """Reduce one channel of a sampled stream to buckets.

    A frame whose samples all fall in one bucket contributes its stored
    summary. Only frames that cross a bucket edge or an end of the range are
    decoded, and the result equals reducing every decoded sample.
    """
    stats = _reader.read_frame_stats(db, channel.key, int(edges[0]), int(edges[-1]))
    last_ns = stats.start_time_ns + (stats.sample_count - 1) * stats.sample_interval_ns
    first_bucket = np.searchsorted(edges, stats.start_time_ns, side="right") - 1
    last_bucket = np.searchsorted(edges, last_ns, side="right") - 1
    whole = (
        (first_bucket == last_bucket)
        & (first_bucket >= 0)
        & (last_bucket < len(edges) - 1)
    )

    parts = [_summary_items(stats, np.flatnonzero(whole))]
    split = stats.frame_key[~whole]
    if len(split):
        metas = _frame_scan.frame_metas_by_key(db, stream.key, split)
        parts.extend(_split_frame_items(db, stream.key, metas, channel.name, edges))
    return downsample.reduce_items(downsample.concat_items(parts), edges)


def _split_frame_items(
    db: duckdb.DuckDBPyConnection,
    stream_key: int,
    metas: list[_frame_scan.FrameMeta],
    name: str,
    edges: Int64Array,
) -> list[downsample.Items]:
    """Return items for the samples of frames that cross a bucket edge.

    Samples are decoded in chunks. Once more than ENVELOPE_CHUNK_SAMPLES
    samples are held, they are reduced to one item per bucket, so memory
    depends on the chunk and bucket counts, not on the frames' sizes.
    """
    slices = []
    for meta in metas:
        if name in (channel.name for channel in meta.channels):
            first, stop = meta.index_range(int(edges[0]), int(edges[-1]))
            slices.append(_frame_scan.FrameSlice(meta, first, stop))
    held: list[downsample.Items] = []
    reduced: list[downsample.Items] = []
    held_count = 0
    decoded = _frame_scan.iter_decoded(
        db, stream_key, slices, chunk_samples=ENVELOPE_CHUNK_SAMPLES
    )
    for frame, times, values in decoded:
        row = [channel.name for channel in frame.channels].index(name)
        held.append(downsample.sample_items(times, values[row]))
        held_count += len(times)
        if held_count > ENVELOPE_CHUNK_SAMPLES:
            merged = downsample.concat_items(reduced + held)
            reduced = [downsample.reduce_items(merged, edges).as_items()]
            held, held_count = [], 0
    return reduced + held


def _summary_items(stats: _reader.FrameStats, rows: Int64Array) -> downsample.Items:
    start = stats.start_time_ns[rows]
    interval = stats.sample_interval_ns[rows]

    def at(index: Int64Array) -> Int64Array:
        steps: Int64Array = np.maximum(index[rows], 0)
        return start + steps * interval

    return downsample.Items(
        time_ns=start,
        count=stats.sample_count[rows],
        finite_count=stats.finite_count[rows],
        minimum=stats.min_value[rows],
        min_time_ns=at(stats.min_index),
        maximum=stats.max_value[rows],
        max_time_ns=at(stats.max_index),
        first=stats.first_value[rows],
        first_time_ns=at(stats.first_index),
        last=stats.last_value[rows],
        last_time_ns=at(stats.last_index),
        total=np.nan_to_num(stats.sum_value[rows]),
    )


def count_samples(
    db: duckdb.DuckDBPyConnection, stream: StreamInfo, start_ns: int, end_ns: int
) -> int:
    """Count samples per channel with start_ns <= time < end_ns, from frame extents."""
    starts, intervals, counts = _reader.frame_extents(db, stream.key, start_ns, end_ns)
    if len(starts) == 0:
        return 0
    first, stop = _inside(starts, intervals, counts, start_ns, end_ns)
    return int(np.maximum(0, stop - first).sum())


def _inside(
    starts: Int64Array,
    intervals: Int64Array,
    counts: Int64Array,
    start_ns: int,
    end_ns: int,
) -> tuple[Int64Array, Int64Array]:
    """Return, per frame, the first and the stop sample index inside a range."""
    first = np.maximum(0, -((starts - start_ns) // intervals))
    stop = np.minimum(counts, -(-(end_ns - starts) // intervals))
    return first, stop


def channel_median_interval_ns(
    db: duckdb.DuckDBPyConnection, channel: ChannelInfo, start_ns: int, end_ns: int
) -> int | None:
    """Return the median interval between a channel's samples in a range.

    It is computed from frame metadata alone. A frame contributes its sample
    interval once per pair of consecutive samples inside the range. Each
    frame after the first also contributes the interval from the previous
    frame's last sample to its own first one. For frames that do not overlap in time
    this equals ``downsample.median_interval_ns`` of the sample times. None
    for fewer than two samples.

    NOTE: where frames overlap in time, the interval between them counts as 0
    rather than the intervals of the interleaved samples, so the median only
    approximates that of the sorted sample times.
    """
    stats = _reader.read_frame_stats(db, channel.key, start_ns, end_ns)
    starts, intervals = stats.start_time_ns, stats.sample_interval_ns
    first, stop = _inside(starts, intervals, stats.sample_count, start_ns, end_ns)
    used = stop > first
    starts, intervals, first, stop = (
        starts[used],
        intervals[used],
        first[used],
        stop[used],
    )
    first_ns = starts + first * intervals
    last_ns = starts + (stop - 1) * intervals
    between = np.maximum(0, first_ns[1:] - last_ns[:-1])
    return downsample.weighted_median(
        np.concatenate([intervals, between]),
        np.concatenate([stop - first - 1, np.ones(len(between), dtype=np.int64)]),
    )


def _next_sample_ns(
    db: duckdb.DuckDBPyConnection, channel_key: int, after_ns: int, end_ns: int
) -> int | None:
    """Return the time of a channel's first sample in (after_ns, end_ns), or None."""
    row = db.execute(
        "SELECT min(CASE WHEN start_time_ns > $after THEN start_time_ns "
        "ELSE start_time_ns + ((($after) - start_time_ns) // sample_interval_ns "
        "+ 1) * sample_interval_ns END) FROM frame_channel_stats "
        "WHERE channel_key = $channel AND end_time_ns > $after "
        "AND start_time_ns < $end",
        {"after": after_ns, "channel": channel_key, "end": end_ns},
    ).fetchone()
    if row is None or row[0] is None or int(row[0]) >= end_ns:
        return None
    return int(row[0])


def channel_page(
    db: duckdb.DuckDBPyConnection,
    stream: StreamInfo,
    names: list[str],
    start_ns: int,
    end_ns: int,
    limit: int,
) -> ChannelPage:
    """Read up to ``limit`` raw samples per channel from [start_ns, end_ns).

    The page ends at a common time for every channel, so the next page
    starts right after ``next_after_ns``. Each channel's samples in the page
    depend only on that channel and the cut, not on the other channels read.
    The cut is found from frame metadata, and only the samples up to it are
    fetched and decoded, so memory depends on ``limit``, not on the range.
    """
    slices, cutoff = _page_slices(db, stream.key, start_ns, end_ns, limit)
    times: dict[str, list[Int64Array]] = {name: [] for name in names}
    values: dict[str, list[Float64Array]] = {name: [] for name in names}
    for frame, stamps, decoded in _frame_scan.iter_decoded(db, stream.key, slices):
        frame_names = [channel.name for channel in frame.channels]
        for name in names:
            if name in frame_names:
                times[name].append(stamps)
                values[name].append(decoded[frame_names.index(name)])
    page = _cut_page(times, values, cutoff)
    if page.next_after_ns is not None:
        keys = {channel.name: channel.key for channel in stream.channels}
        for name in names:
            page.next_time_ns[name] = _next_sample_ns(
                db, keys[name], page.next_after_ns, end_ns
            )
    return page


def _page_slices(
    db: duckdb.DuckDBPyConnection,
    stream_key: int,
    start_ns: int,
    end_ns: int,
    limit: int,
) -> tuple[list[_frame_scan.FrameSlice], int | None]:
    """Choose the frame samples of one page and the page's cut time.

    The cut is the ``limit``-th distinct sample time when more samples
    follow, else None. Frames come in start order, so once a frame starts
    after the cut, no later frame has a sample at or before it. Frames that
    overlap in time can still move the cut earlier, which is why the cut is
    recomputed as frames are added. Each frame contributes at most
    ``limit + 1`` times, and times after the cut are dropped, so the times
    held stay within about twice ``limit``.
    """
    slices: list[_frame_scan.FrameSlice] = []
    axis: list[Int64Array] = []
    held = 0
    cutoff: int | None = None
    for meta in _frame_scan.iter_frame_metas(db, stream_key, start_ns, end_ns):
        if cutoff is not None and meta.start_time_ns > cutoff:
            break
        first, stop = meta.index_range(start_ns, end_ns)
        stop = min(stop, first + limit + 1)
        if cutoff is not None:
            stop = min(
                stop, (cutoff - meta.start_time_ns) // meta.sample_interval_ns + 1
            )
        if stop <= first:
            continue
        slices.append(_frame_scan.FrameSlice(meta, first, stop))
        axis.append(meta.sample_times(first, stop))
        held += stop - first
        if held > limit:
            distinct = np.unique(np.concatenate(axis))
            if cutoff is not None or len(distinct) > limit:
                cutoff = int(distinct[limit - 1])
                axis = [distinct[:limit]]
                held = limit
    return slices, cutoff


def _cut_page(
    times: dict[str, list[Int64Array]],
    values: dict[str, list[Float64Array]],
    cutoff: int | None,
) -> ChannelPage:
    out_times: dict[str, Int64Array] = {}
    out_values: dict[str, Float64Array] = {}
    for name in times:
        stamps = np.concatenate(times[name]) if times[name] else np.zeros(0, np.int64)
        samples = np.concatenate(values[name]) if values[name] else np.zeros(0)
        order = np.argsort(stamps, kind="stable")
        stamps, samples = stamps[order], samples[order]
        if cutoff is not None:
            keep = stamps <= cutoff
            stamps, samples = stamps[keep], samples[keep]
        out_times[name], out_values[name] = stamps, samples
    return ChannelPage(out_times, out_values, cutoff, dict.fromkeys(times))
