"""Writing signal frames with their per-channel summaries."""

from __future__ import annotations

import duckdb
import numpy as np
import numpy.typing as npt

from aetus.server.records import FrameRecord
from aetus.server.store._codec import ChannelSummary
from aetus.server.store._dimensions import DimensionRows
from aetus.server.store._keys import LayoutId
from aetus.server.store._parts import insert_parts


class FrameRows:
    """The frames of one write group, their channel statistics and stream totals.

    ``add`` queues a frame and any new stream, channel or layout row, and
    ``write`` inserts the frames and statistics of the whole group with one
    statement per table.
    """

    def __init__(self, dimensions: DimensionRows) -> None:
        self._dimensions = dimensions
        self._frames = _FrameColumns()
        self._stats = _StatColumns()

    def add(
        self,
        frame: FrameRecord,
        summaries: list[ChannelSummary],
        event_key: int,
        device_key: int,
    ) -> None:
        """Queue one frame of a new event with its per-channel statistics.

        Args:
            frame: The frame as ingest normalised it.
            summaries: Statistics of each channel, in the frame's order.
            event_key: Key of the event that carried the frame.
            device_key: Key of the frame's device.
        """
        rows, keys = self._dimensions, self._dimensions.keys
        stream_key = _ensure_stream(rows, device_key, frame)
        channel_keys = [
            _ensure_channel(rows, stream_key, channel.name, channel.unit)
            for channel in frame.channels
        ]
        layout_key = _ensure_layout(rows, stream_key, frame, channel_keys)
        frame_key = keys.allocate("frames")
        self._frames.add(frame_key, stream_key, layout_key, event_key, frame)
        for channel_key, summary in zip(channel_keys, summaries, strict=True):
            self._stats.add(frame_key, channel_key, frame, summary)

    def write(self, db: duckdb.DuckDBPyConnection) -> None:
        """Insert the queued frames and statistics and add them to the totals.

        The dimension rows they refer to must be inserted first, since the
        totals are UPDATE statements on the stream and channel rows.
        """
        if not self._frames.columns["frame_key"]:
            return
        # Both tables are read by DuckDB's replacement scan of local names.
        frame_table = self._frames.table()
        db.execute("INSERT INTO frames SELECT * FROM frame_table")
        frame_keys = [int(key) for key in frame_table["frame_key"]]
        insert_parts(db, "frame_samples", frame_keys, self._frames.samples)
        # NaN in the scanned arrays becomes NULL, which is what a channel with
        # no finite value stores.
        stat_table = self._stats.table()
        db.execute("INSERT INTO frame_channel_stats SELECT * FROM stat_table")
        _update_totals(db, frame_table, stat_table)


class _FrameColumns:
    """Column lists of the frames table, filled frame by frame."""

    def __init__(self) -> None:
        self.columns: dict[str, list[object]] = {name: [] for name in FRAME_COLUMNS}
        # Sample bytes, stored in frame_samples rather than in the frames row.
        self.samples: list[bytes] = []

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
            b"",
        )
        for name, value in zip(FRAME_COLUMNS, values, strict=True):
            self.columns[name].append(value)
        self.samples.append(frame.samples)

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
    db: duckdb.DuckDBPyConnection,
    frame_table: dict[str, npt.NDArray[np.generic]],
    stat_table: dict[str, npt.NDArray[np.generic]],
) -> None:
    """Add the new frames to their stream's and channels' totals.

    Both arguments are read by DuckDB's replacement scan of local names.
    """
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
    db.execute(
        "UPDATE channels c SET sample_count = c.sample_count + n.samples FROM "
        "(SELECT channel_key, sum(sample_count) AS samples FROM stat_table "
        "GROUP BY channel_key) n WHERE c.channel_key = n.channel_key"
    )


def _end_time_ns(frame: FrameRecord) -> int:
    return frame.start_time_ns + (frame.sample_count - 1) * frame.sample_interval_ns


def _ensure_stream(rows: DimensionRows, device_key: int, frame: FrameRecord) -> int:
    """Return the stream key, queueing the stream with empty totals if new."""
    keys = rows.keys
    key = keys.streams.get((device_key, frame.stream))
    if key is not None:
        return key
    key = keys.allocate("signal_streams")
    rows.add(
        "signal_streams",
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


def _ensure_channel(rows: DimensionRows, stream_key: int, name: str, unit: str) -> int:
    keys = rows.keys
    key = keys.channels.get((stream_key, name))
    if key is None:
        key = keys.allocate("channels")
        rows.add("channels", [key, stream_key, name, unit])
        keys.channels.put((stream_key, name), key)
    return key


def _ensure_layout(
    rows: DimensionRows, stream_key: int, frame: FrameRecord, channel_keys: list[int]
) -> int:
    keys = rows.keys
    identity: LayoutId = (stream_key, frame.encoding, frame.layout, frame.channels)
    key = keys.layouts.get(identity)
    if key is None:
        key = keys.allocate("frame_layouts")
        rows.add(
            "frame_layouts",
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
