"""Server-side downsampling: min/max envelope buckets, calendar buckets and gaps.

Every reduction works on "items": a raw sample is an item of count 1, and a
summary (a frame's statistics, or a bucket of an earlier pass) is an item
that covers many samples. Reducing items into buckets gives the same result
from samples, from summaries or from a mix. A wide read can therefore combine
stored frame summaries with a few decoded frames, and a long read can be
processed in chunks with bounded memory.

Minimum, maximum, first, last and mean are taken over finite values only, so
NaN never reaches a bucket statistic; ``count`` includes NaN and the
infinities. Buckets with no finite value (including empty ones) carry NaN in
those fields, which the query service sends as unset fields.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Int64Array = npt.NDArray[np.int64]
Float64Array = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

# A gap is an interval between consecutive points longer than this many
# median intervals.
GAP_FACTOR = 3
CALENDAR_HOUR = "hour"
CALENDAR_DAY = "day"
_NS_PER_S = 1_000_000_000
_UTC = dt.UTC


@dataclass(frozen=True, slots=True)
class Items:
    """Summaries to reduce into buckets, one entry per item.

    A value field is NaN, and its time field is meaningless, when the item
    has no finite value (``finite_count`` 0). ``time_ns`` places an item in
    a bucket: the time of its first sample, or the start of its bucket.
    """

    time_ns: Int64Array
    count: Int64Array
    finite_count: Int64Array
    minimum: Float64Array
    min_time_ns: Int64Array
    maximum: Float64Array
    max_time_ns: Int64Array
    first: Float64Array
    first_time_ns: Int64Array
    last: Float64Array
    last_time_ns: Int64Array
    total: Float64Array

    def __len__(self) -> int:
        return len(self.count)


@dataclass(frozen=True, slots=True)
class Envelope:
    """Buckets over [edges[0], edges[-1]); bucket i is [edges[i], edges[i+1]).

    Statistics are over finite values; they are NaN in buckets that have none.
    """

    edges: Int64Array
    count: Int64Array
    finite_count: Int64Array
    minimum: Float64Array
    min_time_ns: Int64Array
    maximum: Float64Array
    max_time_ns: Int64Array
    first: Float64Array
    first_time_ns: Int64Array
    last: Float64Array
    last_time_ns: Int64Array
    total: Float64Array

    def __len__(self) -> int:
        return len(self.count)

    @property
    def mean(self) -> Float64Array:
        """Mean of the finite values of each bucket; NaN where there are none."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(
                self.finite_count > 0, self.total / self.finite_count, np.nan
            )

    def as_items(self) -> Items:
        """Return the non-empty buckets as items, to merge with other results."""
        used = self.count > 0
        return _take(
            Items(
                self.edges[:-1],
                self.count,
                self.finite_count,
                self.minimum,
                self.min_time_ns,
                self.maximum,
                self.max_time_ns,
                self.first,
                self.first_time_ns,
                self.last,
                self.last_time_ns,
                self.total,
            ),
            np.flatnonzero(used),
        )


def sample_items(times: Int64Array, values: Float64Array) -> Items:
    """Turn raw samples into items of count 1."""
    values = np.asarray(values, dtype=np.float64)
    times = np.asarray(times, dtype=np.int64)
    finite = np.isfinite(values)
    finite_values = np.where(finite, values, np.nan)
    return Items(
        time_ns=times,
        count=np.ones(len(values), dtype=np.int64),
        finite_count=finite.astype(np.int64),
        minimum=finite_values,
        min_time_ns=times,
        maximum=finite_values,
        max_time_ns=times,
        first=finite_values,
        first_time_ns=times,
        last=finite_values,
        last_time_ns=times,
        total=np.where(finite, values, 0.0),
    )


def concat_items(parts: list[Items]) -> Items:
    """Join several item sets into one."""
    names = Items.__slots__
    return Items(
        **{name: np.concatenate([getattr(p, name) for p in parts]) for name in names}
    )


def envelope(times: Int64Array, values: Float64Array, edges: Int64Array) -> Envelope:
    """Reduce raw samples to min/max envelope buckets.

    Args:
        times: Sample times in ns since the epoch.
        values: Sample values; NaN and infinities are counted but not used
            for statistics.
        edges: Bucket edges, strictly increasing; samples outside
            [edges[0], edges[-1]) are dropped.
    """
    return reduce_items(sample_items(times, values), edges)


def reduce_items(items: Items, edges: Int64Array) -> Envelope:
    """Reduce items into the buckets given by ``edges``.

    An item falls in the bucket of its ``time_ns``. Items need not be sorted;
    when they are, no sort is done. Ties for the minimum or maximum resolve to
    the earliest item.
    """
    buckets = len(edges) - 1
    picked = _sorted_inside(items, int(edges[0]), int(edges[-1]))
    index = np.searchsorted(edges, picked.time_ns, side="right") - 1

    result = _empty_envelope(edges)
    if len(index) == 0:
        return result
    has_value = picked.finite_count > 0
    result.count[:] = np.bincount(index, picked.count, buckets)
    result.finite_count[:] = np.bincount(index, picked.finite_count, buckets)
    result.total[:] = np.bincount(
        index, np.where(has_value, picked.total, 0.0), buckets
    )
    _reduce_extreme(
        index,
        has_value,
        picked.minimum,
        picked.min_time_ns,
        result.minimum,
        result.min_time_ns,
        np.minimum,
    )
    _reduce_extreme(
        index,
        has_value,
        picked.maximum,
        picked.max_time_ns,
        result.maximum,
        result.max_time_ns,
        np.maximum,
    )
    _reduce_end(
        index,
        has_value,
        picked.first,
        picked.first_time_ns,
        result.first,
        result.first_time_ns,
        last=False,
    )
    _reduce_end(
        index,
        has_value,
        picked.last,
        picked.last_time_ns,
        result.last,
        result.last_time_ns,
        last=True,
    )
    return result


def _sorted_inside(items: Items, start_ns: int, end_ns: int) -> Items:
    """Return the items placed in [start_ns, end_ns), sorted by time."""
    times = items.time_ns
    inside = (times >= start_ns) & (times < end_ns)
    if len(times) > 1 and bool((times[1:] < times[:-1]).any()):
        order = np.argsort(times, kind="stable")
        return _take(items, order[inside[order]])
    if inside.all():
        return items
    return _take(items, np.flatnonzero(inside))


def _group_starts(groups: Int64Array) -> Int64Array:
    """Return the position where each run of equal values in ``groups`` starts."""
    return np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])


def _take(items: Items, positions: Int64Array) -> Items:
    return Items(**{name: getattr(items, name)[positions] for name in Items.__slots__})


def _empty_envelope(edges: Int64Array) -> Envelope:
    buckets = len(edges) - 1

    def nan() -> Float64Array:
        return np.full(buckets, np.nan)

    def zero() -> Int64Array:
        return np.zeros(buckets, dtype=np.int64)

    return Envelope(
        np.asarray(edges, dtype=np.int64),
        zero(),
        zero(),
        nan(),
        zero(),
        nan(),
        zero(),
        nan(),
        zero(),
        nan(),
        zero(),
        np.zeros(buckets),
    )


def _reduce_extreme(
    index: Int64Array,
    has_value: BoolArray,
    values: Float64Array,
    times: Int64Array,
    out_values: Float64Array,
    out_times: Int64Array,
    ufunc: np.ufunc,
) -> None:
    """Write each bucket's extreme value and the time of its first occurrence.

    ``index`` is sorted, so each bucket's items are contiguous and in time
    order; the first item equal to the extreme is the earliest one.
    """
    group, value, time = index[has_value], values[has_value], times[has_value]
    if len(group) == 0:
        return
    starts = _group_starts(group)
    extremes = ufunc.reduceat(value, starts)
    owners = group[starts]
    run_lengths = np.diff(np.r_[starts, len(group)])
    hits = np.flatnonzero(value == np.repeat(extremes, run_lengths))
    first_hit = hits[_group_starts(group[hits])]
    out_values[owners] = extremes
    out_times[owners] = time[first_hit]


def _reduce_end(
    index: Int64Array,
    has_value: BoolArray,
    values: Float64Array,
    times: Int64Array,
    out_values: Float64Array,
    out_times: Int64Array,
    *,
    last: bool,
) -> None:
    """Write each bucket's first (or last) finite value and its time."""
    group, value, time = index[has_value], values[has_value], times[has_value]
    if len(group) == 0:
        return
    if last:
        group, value, time = group[::-1], value[::-1], time[::-1]
    positions = _group_starts(group)
    owners = group[positions]
    out_values[owners] = value[positions]
    out_times[owners] = time[positions]


def equal_width_edges(start_ns: int, end_ns: int, bucket_count: int) -> Int64Array:
    """Split [start_ns, end_ns) into at most ``bucket_count`` equal buckets.

    The width is rounded up to whole nanoseconds, so the last bucket may be
    shorter; it ends exactly at ``end_ns``.
    """
    if end_ns <= start_ns or bucket_count < 1:
        raise ValueError(
            f"Cannot bucket [{start_ns}, {end_ns}) into {bucket_count} buckets"
        )
    width = -(-(end_ns - start_ns) // bucket_count)
    edges = np.arange(start_ns, end_ns, width, dtype=np.int64)
    return np.append(edges, np.int64(end_ns))


def calendar_edges(
    start_ns: int, end_ns: int, unit: str, time_zone: str, *, max_buckets: int
) -> Int64Array:
    """Return local calendar boundaries covering [start_ns, end_ns).

    The first edge is the start of the local day or hour that contains
    ``start_ns`` and the last is the first boundary at or after ``end_ns``.
    Days follow the zone's offset changes, so they last 23 or 25 hours on
    daylight-saving days.

    Raises:
        zoneinfo.ZoneInfoNotFoundError: ``time_zone`` is not an IANA zone.
        ValueError: The range needs more than ``max_buckets`` buckets.
    """
    zone = zoneinfo.ZoneInfo(time_zone)
    nominal_s = 3600 if unit == CALENDAR_HOUR else 86400
    estimate = (end_ns - start_ns) // (nominal_s * _NS_PER_S) + 2
    if estimate > max_buckets:
        raise ValueError(
            f"The range spans about {estimate} {unit} buckets, more than {max_buckets}"
        )
    edge = _floor_local(_to_datetime(start_ns), unit, zone)
    edges = [_to_ns(edge)]
    while edges[-1] < end_ns:
        edge = _next_local(edge, unit, zone)
        edge_ns = _to_ns(edge)
        if edge_ns <= edges[-1]:
            # A nonexistent local boundary can map back onto the last edge.
            edge_ns = edges[-1] + nominal_s * _NS_PER_S
            edge = _to_datetime(edge_ns).astimezone(zone)
        edges.append(edge_ns)
    return np.asarray(edges, dtype=np.int64)


def _to_datetime(time_ns: int) -> dt.datetime:
    seconds, nanos = divmod(time_ns, _NS_PER_S)
    moment = dt.datetime.fromtimestamp(seconds, _UTC)
    return moment + dt.timedelta(microseconds=nanos // 1000)


def _to_ns(moment: dt.datetime) -> int:
    delta = moment.astimezone(_UTC) - dt.datetime(1970, 1, 1, tzinfo=_UTC)
    return (delta.days * 86400 + delta.seconds) * _NS_PER_S + delta.microseconds * 1000


def _floor_local(
    moment: dt.datetime, unit: str, zone: zoneinfo.ZoneInfo
) -> dt.datetime:
    local = moment.astimezone(zone)
    if unit == CALENDAR_HOUR:
        # replace() keeps the fold, so the repeated hour of a fall-back day
        # floors to its own start.
        return local.replace(minute=0, second=0, microsecond=0)
    return dt.datetime(local.year, local.month, local.day, tzinfo=zone)


def _next_local(edge: dt.datetime, unit: str, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    if unit == CALENDAR_HOUR:
        later = (edge.astimezone(_UTC) + dt.timedelta(hours=1)).astimezone(zone)
        return later.replace(minute=0, second=0, microsecond=0)
    day = edge.date() + dt.timedelta(days=1)
    return dt.datetime(day.year, day.month, day.day, tzinfo=zone)


def median_interval_ns(times: Int64Array) -> int | None:
    """Return the median interval between consecutive times, or None.

    The median is the mean of the two middle intervals in sorted order (the
    middle one when their count is odd), rounded down to whole ns. None for
    fewer than two times.
    """
    if len(times) < 2:
        return None
    intervals = np.diff(np.asarray(times, dtype=np.int64))
    count = len(intervals)
    lower, upper = (count - 1) // 2, count // 2
    middle = np.partition(intervals, [lower, upper])
    return (int(middle[lower]) + int(middle[upper])) // 2


def weighted_median(values: Int64Array, weights: Int64Array) -> int | None:
    """Return the median of ``values`` repeated ``weights`` times each.

    It equals ``median_interval_ns`` of the expanded list of intervals,
    without expanding it. None when the weights add up to 0.
    """
    total = int(weights.sum())
    if total <= 0:
        return None
    order = np.argsort(values, kind="stable")
    reached = np.cumsum(weights[order])
    ranks = [(total - 1) // 2, total // 2]
    positions = np.searchsorted(reached, ranks, side="right")
    lower, upper = (int(values[order][position]) for position in positions)
    return (lower + upper) // 2


def gap_after(
    times: Int64Array,
    median_ns: int | None = None,
    *,
    next_time_ns: int | None = None,
) -> BoolArray:
    """Mark each point that is followed by a gap.

    A gap is an interval longer than GAP_FACTOR times the median interval.
    Pass ``median_ns`` to judge a page of points by the whole range's median,
    and ``next_time_ns``, the time of the first point after the page, to
    judge the interval after the page's last point as well.
    """
    times = np.asarray(times, dtype=np.int64)
    marks = np.zeros(len(times), dtype=np.bool_)
    median = median_interval_ns(times) if median_ns is None else median_ns
    if median is None or median <= 0 or len(times) == 0:
        return marks
    limit = GAP_FACTOR * median
    marks[:-1] = np.diff(times) > limit
    if next_time_ns is not None:
        marks[-1] = next_time_ns - int(times[-1]) > limit
    return marks
