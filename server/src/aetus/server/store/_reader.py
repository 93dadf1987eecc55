"""Read queries of the embedded store: streams, points, frames and events."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt

from aetus.server import downsample
from aetus.server.records import ChannelSpec, ValueType
from aetus.server.store._parts import join_parts

SCALAR = "scalar"
SAMPLED = "sampled"
# A scalar range of up to this many points gets the exact median interval.
# It must be at least the maximum points of one raw page (MAX_MAX_POINTS in
# services.query), because a range read in one page takes its median from
# that page, and paging must not change the median.
EXACT_MEDIAN_MAX_POINTS = 131_072
# Windows and points per window that estimate the median of a larger range.
MEDIAN_WINDOW_COUNT = 64
MEDIAN_WINDOW_POINTS = 1_024


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    """One channel of a sampled stream."""

    key: int
    name: str
    unit: str
    sample_count: int


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """A readable stream: a scalar series or a sampled signal stream.

    ``key`` is the series key of a scalar stream and the stream key of a
    sampled one. ``point_count`` counts samples per channel for a sampled
    stream (the most any channel has).
    """

    device_id: str
    name: str
    kind: str
    key: int
    value_type: ValueType
    unit: str
    channels: tuple[ChannelInfo, ...]
    first_time_ns: int
    last_time_ns: int
    point_count: int
    last_interval_ns: int


@dataclass(frozen=True, slots=True)
class PointPage:
    """Scalar points in time order; ``row_ids`` support keyset paging.

    ``values`` is float64 for DOUBLE, int64 for INT64 and BOOL, and an object
    array of str for STRING. ``missing`` marks readings stored without a
    value (SQL NULL), whose entries in ``values`` are NaN, 0 or "".
    """

    time_ns: npt.NDArray[np.int64]
    values: npt.NDArray[np.generic]
    row_ids: npt.NDArray[np.int64]
    missing: npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class StoredFrame:
    """One stored signal frame with what is needed to decode it."""

    frame_key: int
    start_time_ns: int
    sample_interval_ns: int
    sample_count: int
    encoding: int
    layout: int
    channels: tuple[ChannelSpec, ...]
    samples: bytes


@dataclass(frozen=True, slots=True)
class FrameStats:
    """Per-frame statistics of one channel, one entry per frame, in time order.

    Value columns hold NaN where a frame has no finite value.
    """

    start_time_ns: npt.NDArray[np.int64]
    sample_interval_ns: npt.NDArray[np.int64]
    sample_count: npt.NDArray[np.int64]
    finite_count: npt.NDArray[np.int64]
    min_value: npt.NDArray[np.float64]
    max_value: npt.NDArray[np.float64]
    min_index: npt.NDArray[np.int64]
    max_index: npt.NDArray[np.int64]
    first_index: npt.NDArray[np.int64]
    last_index: npt.NDArray[np.int64]
    first_value: npt.NDArray[np.float64]
    last_value: npt.NDArray[np.float64]
    sum_value: npt.NDArray[np.float64]
    frame_key: npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class DeviceEventRow:
    """A stored status or alert event."""

    event_key: int
    time_ns: int
    boot_id: str
    sequence: int
    kind: int
    body: bytes


def device_exists(db: duckdb.DuckDBPyConnection, device_id: str) -> bool:
    """Return whether the device is registered or has stored data."""
    row = db.execute(
        "SELECT 1 FROM devices WHERE device_id = ?", [device_id]
    ).fetchone()
    return row is not None


def list_streams(
    db: duckdb.DuckDBPyConnection, device_id: str, name: str | None = None
) -> list[StreamInfo]:
    """Return the device's scalar and sampled streams, sorted by name.

    ``name`` limits the result to the streams of that name.
    """
    where = "d.device_id = ?" + ("" if name is None else " AND s.name = ?")
    params = [device_id] if name is None else [device_id, name]
    scalar = db.execute(
        "SELECT s.series_key, s.name, s.value_type, s.unit, s.first_time_ns, "
        "s.last_time_ns, s.point_count FROM series s JOIN devices d "
        f"USING (device_key) WHERE {where}",
        params,
    ).fetchall()
    streams = [
        StreamInfo(
            device_id,
            stream_name,
            SCALAR,
            key,
            ValueType(value_type),
            unit,
            (),
            first,
            last,
            count,
            0,
        )
        for key, stream_name, value_type, unit, first, last, count in scalar
    ]
    sampled = db.execute(
        "SELECT s.stream_key, s.name, s.first_time_ns, s.last_time_ns, "
        "s.last_interval_ns FROM signal_streams s JOIN devices d "
        f"USING (device_key) WHERE {where}",
        params,
    ).fetchall()
    for key, stream_name, first, last, interval in sampled:
        channels = _channels(db, key)
        count = max((channel.sample_count for channel in channels), default=0)
        streams.append(
            StreamInfo(
                device_id,
                stream_name,
                SAMPLED,
                key,
                ValueType.DOUBLE,
                _shared_unit(channels),
                channels,
                first,
                last,
                count,
                interval,
            )
        )
    return sorted(streams, key=lambda stream: (stream.name, stream.kind != SCALAR))


def find_stream(
    db: duckdb.DuckDBPyConnection, device_id: str, name: str
) -> StreamInfo | None:
    """Return one stream by name; a scalar series wins over a signal stream."""
    matches = list_streams(db, device_id, name)
    return matches[0] if matches else None


def _channels(
    db: duckdb.DuckDBPyConnection, stream_key: int
) -> tuple[ChannelInfo, ...]:
    rows = db.execute(
        "SELECT channel_key, name, unit, sample_count FROM channels "
        "WHERE stream_key = ? ORDER BY channel_key",
        [stream_key],
    ).fetchall()
    return tuple(ChannelInfo(*row) for row in rows)


def _shared_unit(channels: tuple[ChannelInfo, ...]) -> str:
    units = {channel.unit for channel in channels}
    return units.pop() if len(units) == 1 else ""


def count_points(
    db: duckdb.DuckDBPyConnection, series_key: int, start_ns: int, end_ns: int
) -> int:
    """Count a series' points with start_ns <= time < end_ns."""
    row = db.execute(
        "SELECT count(*) FROM points WHERE series_key = ? "
        "AND time_ns >= ? AND time_ns < ?",
        [series_key, start_ns, end_ns],
    ).fetchone()
    return int(row[0]) if row else 0


def median_interval_ns(
    db: duckdb.DuckDBPyConnection, series_key: int, start_ns: int, end_ns: int
) -> int | None:
    """Return the median interval between a series' points in a range.

    For a range of at most ``EXACT_MEDIAN_MAX_POINTS`` points the value equals
    ``downsample.median_interval_ns`` of the range's point times. A larger
    range gets the windowed estimate of ``_windowed_median_interval_ns``. The
    range is never fetched whole. None for fewer than two points.
    """
    count = count_points(db, series_key, start_ns, end_ns)
    if count < 2:
        return None
    if count > EXACT_MEDIAN_MAX_POINTS:
        return _windowed_median_interval_ns(db, series_key, start_ns, end_ns)

    # quantile_disc(x, 0.5) returns the lower of the two middle values, so
    # the same of the negated intervals gives the upper one. Both stay
    # integers, where DuckDB's median() would round large ones as DOUBLE.
    row = db.execute(
        "SELECT quantile_disc(d, 0.5), -quantile_disc(-d, 0.5) FROM "
        "(SELECT time_ns - lag(time_ns) OVER (ORDER BY time_ns) AS d FROM points "
        "WHERE series_key = ? AND time_ns >= ? AND time_ns < ?) WHERE d IS NOT NULL",
        [series_key, start_ns, end_ns],
    ).fetchone()
    if row is None or row[0] is None:
        return None
    return (int(row[0]) + int(row[1])) // 2


def _windowed_median_interval_ns(
    db: duckdb.DuckDBPyConnection, series_key: int, start_ns: int, end_ns: int
) -> int | None:
    # Approximation: the range is cut into MEDIAN_WINDOW_COUNT slices of equal
    # time span, and the median is taken over the intervals between the first
    # MEDIAN_WINDOW_POINTS points of each slice. Each slice is a top-N query
    # of bounded memory, and the result depends only on the data and the range.
    span = end_ns - start_ns
    bounds = [
        start_ns + span * i // MEDIAN_WINDOW_COUNT
        for i in range(MEDIAN_WINDOW_COUNT + 1)
    ]
    parts: list[npt.NDArray[np.int64]] = []
    for index in range(MEDIAN_WINDOW_COUNT):
        times = db.execute(
            "SELECT time_ns FROM points WHERE series_key = ? AND time_ns >= ? "
            "AND time_ns < ? ORDER BY time_ns LIMIT ?",
            [series_key, bounds[index], bounds[index + 1], MEDIAN_WINDOW_POINTS],
        ).fetchnumpy()["time_ns"]
        parts.append(np.diff(np.asarray(times, dtype=np.int64)).astype(np.int64))
    intervals: npt.NDArray[np.int64] = np.concatenate(parts)
    return downsample.weighted_median(intervals, np.ones_like(intervals))


def read_points(
    db: duckdb.DuckDBPyConnection,
    series_key: int,
    value_type: ValueType,
    start_ns: int,
    end_ns: int,
    *,
    after: tuple[int, int] | None = None,
    limit: int | None = None,
) -> PointPage:
    """Read a series' points in [start_ns, end_ns), ordered by time.

    Args:
        db: Connection to read with.
        series_key: Key of the series.
        value_type: The series' value type, which picks the value column.
        start_ns: Start of the range, inclusive.
        end_ns: End of the range, exclusive.
        after: (time_ns, row_id) of the last point of the previous page.
        limit: Maximum number of points to return; None for all.
    """
    column = {
        ValueType.DOUBLE: "value_double",
        ValueType.STRING: "value_string",
    }.get(value_type, "value_int")
    sql = (
        f"SELECT time_ns, {column} AS value, rowid AS row_id FROM points "
        "WHERE series_key = ? AND time_ns >= ? AND time_ns < ?"
    )
    params: list[object] = [series_key, start_ns, end_ns]
    if after is not None:
        sql += " AND (time_ns > ? OR (time_ns = ? AND rowid > ?))"
        params += [after[0], after[0], after[1]]
    sql += " ORDER BY time_ns, rowid"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    columns = db.execute(sql, params).fetchnumpy()
    values = columns["value"]
    missing = np.ma.getmaskarray(values)
    if isinstance(values, np.ma.MaskedArray):
        values = values.filled(_PLACEHOLDERS.get(value_type, 0))
    return PointPage(
        np.asarray(columns["time_ns"], dtype=np.int64),
        np.asarray(values),
        np.asarray(columns["row_id"], dtype=np.int64),
        missing,
    )


# Values that stand in for NULL in a fetched value column.
_PLACEHOLDERS: dict[ValueType, float | str] = {
    ValueType.DOUBLE: np.nan,
    ValueType.STRING: "",
}


def read_frames(
    db: duckdb.DuckDBPyConnection,
    stream_key: int,
    start_ns: int,
    end_ns: int,
    *,
    after: tuple[int, int] | None = None,
    limit: int | None = None,
) -> list[StoredFrame]:
    """Return frames with a sample in [start_ns, end_ns), by start time.

    Args:
        db: Connection to read with.
        stream_key: Key of the signal stream.
        start_ns: Start of the range, inclusive.
        end_ns: End of the range, exclusive.
        after: (start_time_ns, frame_key) of the last frame already read.
        limit: Maximum number of frames to return; None for all.
    """
    where = "f.start_time_ns < ? AND f.end_time_ns >= ?"
    params: list[object] = [stream_key, end_ns, start_ns]
    if after is not None:
        where += (
            " AND (f.start_time_ns > ? OR (f.start_time_ns = ? AND f.frame_key > ?))"
        )
        params += [after[0], after[0], after[1]]
    suffix = "" if limit is None else f" LIMIT {int(limit)}"
    return _frames(db, where, params, suffix)


def _frames(
    db: duckdb.DuckDBPyConnection, where: str, params: list[object], suffix: str
) -> list[StoredFrame]:
    stream_key = params[0]
    assert isinstance(stream_key, int)
    names = {c.key: c.name for c in _channels(db, stream_key)}
    rows = db.execute(
        "SELECT f.frame_key, f.start_time_ns, f.sample_interval_ns, "
        "f.sample_count, l.encoding, l.layout, l.channel_keys, l.channel_units, "
        "l.scales, l.offsets, f.samples FROM frames f JOIN frame_layouts l "
        f"USING (layout_key) WHERE f.stream_key = ? AND {where} "
        f"ORDER BY f.start_time_ns, f.frame_key{suffix}",
        params,
    ).fetchall()
    frames = [_stored_frame(row, names) for row in rows]
    moved = [f.frame_key for f in frames if not f.samples and f.sample_count]
    if not moved:
        return frames
    blobs = join_parts(db, "frame_samples", "frame_key", moved)
    return [
        dataclasses.replace(f, samples=blobs[f.frame_key])
        if f.frame_key in blobs
        else f
        for f in frames
    ]


def _stored_frame(row: tuple[Any, ...], names: dict[int, str]) -> StoredFrame:
    key, start, interval, count, encoding, layout, keys, units, scales, offsets = row[
        :10
    ]
    specs = tuple(
        ChannelSpec(names[k], unit, scale, offset)
        for k, unit, scale, offset in zip(keys, units, scales, offsets, strict=True)
    )
    return StoredFrame(
        key, start, interval, count, encoding, layout, specs, bytes(row[10])
    )


def frame_extents(
    db: duckdb.DuckDBPyConnection, stream_key: int, start_ns: int, end_ns: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Return start, interval and sample count of frames overlapping a range."""
    columns = db.execute(
        "SELECT start_time_ns, sample_interval_ns, sample_count FROM frames "
        "WHERE stream_key = ? AND start_time_ns < ? AND end_time_ns >= ?",
        [stream_key, end_ns, start_ns],
    ).fetchnumpy()
    return (
        np.asarray(columns["start_time_ns"], dtype=np.int64),
        np.asarray(columns["sample_interval_ns"], dtype=np.int64),
        np.asarray(columns["sample_count"], dtype=np.int64),
    )


def read_frame_stats(
    db: duckdb.DuckDBPyConnection, channel_key: int, start_ns: int, end_ns: int
) -> FrameStats:
    """Return one channel's per-frame statistics for frames overlapping a range."""
    columns = db.execute(
        "SELECT start_time_ns, sample_interval_ns, sample_count, finite_count, "
        "min_value, max_value, min_index, max_index, first_index, last_index, "
        "first_value, last_value, "
        "sum_value, frame_key FROM frame_channel_stats WHERE channel_key = ? "
        "AND start_time_ns < ? AND end_time_ns >= ? "
        "ORDER BY start_time_ns, frame_key",
        [channel_key, end_ns, start_ns],
    ).fetchnumpy()
    return FrameStats(
        start_time_ns=_ints(columns["start_time_ns"]),
        sample_interval_ns=_ints(columns["sample_interval_ns"]),
        sample_count=_ints(columns["sample_count"]),
        finite_count=_ints(columns["finite_count"]),
        min_value=_floats(columns["min_value"]),
        max_value=_floats(columns["max_value"]),
        min_index=_ints(columns["min_index"]),
        max_index=_ints(columns["max_index"]),
        first_index=_ints(columns["first_index"]),
        last_index=_ints(columns["last_index"]),
        first_value=_floats(columns["first_value"]),
        last_value=_floats(columns["last_value"]),
        sum_value=_floats(columns["sum_value"]),
        frame_key=_ints(columns["frame_key"]),
    )


def _ints(column: object) -> npt.NDArray[np.int64]:
    """Turn a fetched integer column into an array, NULL as -1."""
    if isinstance(column, np.ma.MaskedArray):
        column = column.filled(-1)
    return np.asarray(column, dtype=np.int64)


def _floats(column: object) -> npt.NDArray[np.float64]:
    """Turn a fetched float column into an array, NULL as NaN."""
    if isinstance(column, np.ma.MaskedArray):
        column = column.filled(np.nan)
    return np.asarray(column, dtype=np.float64)


def list_device_events(
    db: duckdb.DuckDBPyConnection,
    device_id: str,
    start_ns: int | None,
    end_ns: int | None,
    after: tuple[int, int] | None,
    limit: int,
) -> list[DeviceEventRow]:
    """Return a device's status and alert events, oldest first.

    Args:
        db: Connection to read with.
        device_id: Device id.
        start_ns: Inclusive lower time bound, or None.
        end_ns: Exclusive upper time bound, or None.
        after: (time_ns, event_key) of the last event of the previous page.
        limit: Maximum number of events to return.
    """
    sql = (
        "SELECT x.event_key, x.time_ns, b.boot_id, e.sequence, x.kind, x.body "
        "FROM device_events x JOIN devices d ON d.device_key = x.device_key "
        "JOIN events e ON e.event_key = x.event_key "
        "JOIN boots b ON b.boot_key = e.boot_key WHERE d.device_id = ?"
    )
    params: list[object] = [device_id]
    if start_ns is not None:
        sql += " AND x.time_ns >= ?"
        params.append(start_ns)
    if end_ns is not None:
        sql += " AND x.time_ns < ?"
        params.append(end_ns)
    if after is not None:
        sql += " AND (x.time_ns > ? OR (x.time_ns = ? AND x.event_key > ?))"
        params += [after[0], after[0], after[1]]
    sql += f" ORDER BY x.time_ns, x.event_key LIMIT {int(limit)}"
    rows = db.execute(sql, params).fetchall()
    return [
        DeviceEventRow(key, time_ns, boot_id, int(sequence), kind, bytes(body))
        for key, time_ns, boot_id, sequence, kind, body in rows
    ]
