"""Writing signal frames with their per-channel summaries."""

from __future__ import annotations

import duckdb
import numpy as np
import numpy.typing as npt
from aetus.server.records import FrameRecord
from aetus.server.store._codec import summarize_channel
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
    frame_rows: list[list[object]] = []
    stat_rows: list[list[object]] = []
    channel_totals: dict[int, tuple[int, str]] = {}
    for offset, (frame, decoded) in enumerate(frames):
        stream_key = _ensure_stream(db, keys, device_keys[frame.device_id], frame)
        channel_keys = [
            _ensure_channel(db, keys, stream_key, channel.name, channel.unit)
            for channel in frame.channels
        ]
        layout_key = _ensure_layout(db, keys, stream_key, frame, channel_keys)
        frame_key = first + offset
        end_ns = _end_time_ns(frame)
        frame_rows.append(
            [
                frame_key,
                stream_key,
                layout_key,
                int(event_keys[frame.event_index]),
                frame.start_time_ns,
                end_ns,
                frame.sample_interval_ns,
                frame.sample_count,
                frame.samples,
            ]
        )
        for row, channel_key in enumerate(channel_keys):
            stat_rows.append(
                [
                    frame_key,
                    channel_key,
                    frame.start_time_ns,
                    end_ns,
                    frame.sample_interval_ns,
                    frame.sample_count,
                    *_summary_columns(decoded[row]),
                ]
            )
            count, _ = channel_totals.get(channel_key, (0, ""))
            unit = frame.channels[row].unit
            channel_totals[channel_key] = (count + frame.sample_count, unit)

    db.executemany("INSERT INTO frames VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", frame_rows)
    db.executemany(
        "INSERT INTO frame_channel_stats VALUES "
        "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        stat_rows,
    )
    db.executemany(
        "UPDATE channels SET sample_count = sample_count + ?, unit = ? "
        "WHERE channel_key = ?",
        [[count, unit, key] for key, (count, unit) in channel_totals.items()],
    )


def _end_time_ns(frame: FrameRecord) -> int:
    return frame.start_time_ns + (frame.sample_count - 1) * frame.sample_interval_ns


def _summary_columns(values: npt.NDArray[np.float64]) -> list[object]:
    summary = summarize_channel(values)
    return [
        summary.finite_count,
        summary.minimum,
        summary.maximum,
        summary.min_index,
        summary.max_index,
        summary.first_index,
        summary.last_index,
        summary.first,
        summary.last,
        summary.total,
    ]


def _ensure_stream(
    db: duckdb.DuckDBPyConnection,
    keys: Keys,
    device_key: int,
    frame: FrameRecord,
) -> int:
    """Return the stream key, creating the stream or updating its totals."""
    end_ns = _end_time_ns(frame)
    key = keys.streams.get((device_key, frame.stream))
    if key is not None:
        db.execute(
            "UPDATE signal_streams SET first_time_ns = least(first_time_ns, ?), "
            "last_interval_ns = CASE WHEN ? >= last_time_ns THEN ? "
            "ELSE last_interval_ns END, "
            "last_time_ns = greatest(last_time_ns, ?), "
            "frame_count = frame_count + 1 WHERE stream_key = ?",
            [frame.start_time_ns, end_ns, frame.sample_interval_ns, end_ns, key],
        )
        return key

    key = keys.allocate("signal_streams")
    db.execute(
        "INSERT INTO signal_streams VALUES (?, ?, ?, ?, ?, 1, ?)",
        [
            key,
            device_key,
            frame.stream,
            frame.start_time_ns,
            end_ns,
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
