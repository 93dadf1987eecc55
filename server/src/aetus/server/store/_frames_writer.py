"""Writing signal frames with their per-channel summaries."""

from __future__ import annotations

import duckdb
import numpy as np
import numpy.typing as npt
from aetus.server.records import FrameRecord
from aetus.server.store._codec import ChannelSummary, summarize_channels
from aetus.server.store._keys import Keys, LayoutId

DecodedFrame = tuple[FrameRecord, npt.NDArray[np.float64]]


def write_frames(
    db: duckdb.DuckDBPyConnection,
    keys: Keys,
    frames: list[DecodedFrame],
    event_keys: npt.NDArray[np.int64],
    device_keys: dict[str, int],
) -> None:
    """Insert frames of new events, their channel statistics and stream totals.

    Args:
        db: Connection with an open transaction.
        keys: Dimension key caches.
        frames: Each frame with its decoded values (channels x samples).
        event_keys: Event key of each event index of the batch.
        device_keys: Device key of each device id of the batch.
    """
    if not frames:
        return
    first = keys.allocate("frames", len(frames))
    rows = _FrameColumns()
    stats = _StatColumns()
    for offset, (frame, decoded) in enumerate(frames):
        stream_key = _ensure_stream(db, keys, device_keys[frame.device_id], frame)
        channel_keys = [
            _ensure_channel(db, keys, stream_key, channel.name, channel.unit)
            for channel in frame.channels
        ]
        layout_key = _ensure_layout(db, keys, stream_key, frame, channel_keys)
        frame_key = first + offset
        event_key = int(event_keys[frame.event_index])
        rows.add(frame_key, stream_key, layout_key, event_key, frame)
        summaries = summarize_channels(decoded)
        for channel_key, summary in zip(channel_keys, summaries, strict=True):
            stats.add(frame_key, channel_key, frame, summary)

    frame_table = rows.table()  # noqa: F841  # read by DuckDB's replacement scan
    db.execute("INSERT INTO frames SELECT * FROM frame_table")
    # NaN in the scanned arrays becomes NULL, which is what a channel with no
    # finite value stores.
    stat_table = stats.table()  # noqa: F841  # read by DuckDB's replacement scan
    db.execute("INSERT INTO frame_channel_stats SELECT * FROM stat_table")
    _update_totals(db, rows, stats)


class _FrameColumns:
    """Column lists of the frames table, filled frame by frame."""

    def __init__(self) -> None:
        self.columns: dict[str, list[object]] = {name: [] for name in FRAME_COLUMNS}

    def add(
        self,
        frame_key: int,
        stream_key: int,
        layout_key: int,
        event_key: int,
        frame: FrameRecord,
    ) -> None:
        values = (
            frame_key,
            stream_key,
            layout_key,
            event_key,
            frame.start_time_ns,
            _end_time_ns(frame),
            frame.sample_interval_ns,
            frame.sample_count,
            frame.samples,
        )
        for name, value in zip(FRAME_COLUMNS, values, strict=True):
            self.columns[name].append(value)

    def table(self) -> dict[str, npt.NDArray[np.generic]]:
        table: dict[str, npt.NDArray[np.generic]] = {
            name: np.asarray(values, dtype=np.int64)
            for name, values in self.columns.items()
            if name != "samples"
        }
        samples = np.empty(len(self.columns["samples"]), dtype=object)
        samples[:] = self.columns["samples"]
        table["samples"] = samples
        return table


class _StatColumns:
    """Column lists of frame_channel_stats, filled channel by channel."""

    def __init__(self) -> None:
        self.columns: dict[str, list[float]] = {name: [] for name in STAT_COLUMNS}

    def add(
        self,
        frame_key: int,
        channel_key: int,
        frame: FrameRecord,
        summary: ChannelSummary,
    ) -> None:
        row = (
            frame_key,
            channel_key,
            frame.start_time_ns,
            _end_time_ns(frame),
            frame.sample_interval_ns,
            frame.sample_count,
            summary.finite_count,
            _or_nan(summary.minimum),
            _or_nan(summary.maximum),
            _or_minus_one(summary.min_index),
            _or_minus_one(summary.max_index),
            _or_minus_one(summary.first_index),
            _or_minus_one(summary.last_index),
            _or_nan(summary.first),
            _or_nan(summary.last),
            summary.total,
        )
        for name, value in zip(STAT_COLUMNS, row, strict=True):
            self.columns[name].append(value)

    def table(self) -> dict[str, npt.NDArray[np.generic]]:
        return {
            name: np.asarray(
                values, dtype=np.float64 if name in _FLOAT_STATS else np.int64
            )
            for name, values in self.columns.items()
        }


FRAME_COLUMNS = (
    "frame_key",
    "stream_key",
    "layout_key",
    "event_key",
    "start_time_ns",
    "end_time_ns",
    "sample_interval_ns",
    "sample_count",
    "samples",
)
STAT_COLUMNS = (
    "frame_key",
    "channel_key",
    "start_time_ns",
    "end_time_ns",
    "sample_interval_ns",
    "sample_count",
    "finite_count",
    "min_value",
    "max_value",
    "min_index",
    "max_index",
    "first_index",
    "last_index",
    "first_value",
    "last_value",
    "sum_value",
)
_FLOAT_STATS = {"min_value", "max_value", "first_value", "last_value", "sum_value"}


def _or_nan(value: float | None) -> float:
    return np.nan if value is None else value


def _or_minus_one(value: int | None) -> int:
    return -1 if value is None else value


def _update_totals(
    db: duckdb.DuckDBPyConnection, rows: _FrameColumns, stats: _StatColumns
) -> None:
    """Add the new frames to their stream's and channels' totals."""
    frame_table = rows.table()  # noqa: F841  # read by DuckDB's replacement scan
    db.execute(
        "UPDATE signal_streams s SET first_time_ns = least(s.first_time_ns, n.first), "
        "last_interval_ns = CASE WHEN n.last >= s.last_time_ns THEN n.interval "
        "ELSE s.last_interval_ns END, "
        "last_time_ns = greatest(s.last_time_ns, n.last), "
        "frame_count = s.frame_count + n.frames FROM (SELECT stream_key, "
        "min(start_time_ns) AS first, max(end_time_ns) AS last, count(*) AS frames, "
        "arg_max(sample_interval_ns, end_time_ns) AS interval FROM frame_table "
        "GROUP BY stream_key) n WHERE s.stream_key = n.stream_key"
    )
    stat_table = stats.table()  # noqa: F841  # read by DuckDB's replacement scan
    db.execute(
        "UPDATE channels c SET sample_count = c.sample_count + n.samples FROM "
        "(SELECT channel_key, sum(sample_count) AS samples FROM stat_table "
        "GROUP BY channel_key) n WHERE c.channel_key = n.channel_key"
    )


def _end_time_ns(frame: FrameRecord) -> int:
    return frame.start_time_ns + (frame.sample_count - 1) * frame.sample_interval_ns


def _ensure_stream(
    db: duckdb.DuckDBPyConnection,
    keys: Keys,
    device_key: int,
    frame: FrameRecord,
) -> int:
    """Return the stream key, creating the stream with empty totals if new."""
    key = keys.streams.get((device_key, frame.stream))
    if key is not None:
        return key
    key = keys.allocate("signal_streams")
    db.execute(
        "INSERT INTO signal_streams VALUES (?, ?, ?, ?, ?, 0, ?)",
        [
            key,
            device_key,
            frame.stream,
            frame.start_time_ns,
            _end_time_ns(frame),
            frame.sample_interval_ns,
        ],
    )
    keys.streams.put((device_key, frame.stream), key)
    return key


def _ensure_channel(
    db: duckdb.DuckDBPyConnection,
    keys: Keys,
    stream_key: int,
    name: str,
    unit: str,
) -> int:
    key = keys.channels.get((stream_key, name))
    if key is None:
        key = keys.allocate("channels")
        db.execute(
            "INSERT INTO channels VALUES (?, ?, ?, ?, 0)",
            [key, stream_key, name, unit],
        )
        keys.channels.put((stream_key, name), key)
    return key


def _ensure_layout(
    db: duckdb.DuckDBPyConnection,
    keys: Keys,
    stream_key: int,
    frame: FrameRecord,
    channel_keys: list[int],
) -> int:
    identity: LayoutId = (stream_key, frame.encoding, frame.layout, frame.channels)
    key = keys.layouts.get(identity)
    if key is None:
        key = keys.allocate("frame_layouts")
        db.execute(
            "INSERT INTO frame_layouts VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                key,
                stream_key,
                frame.encoding,
                frame.layout,
                channel_keys,
                [channel.unit for channel in frame.channels],
                [channel.scale for channel in frame.channels],
                [channel.offset for channel in frame.channels],
            ],
        )
        keys.layouts.put(identity, key)
    return key
