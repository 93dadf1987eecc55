"""Bounded-memory access to signal frames: metadata first, sample bytes in small sets.

A frame may be as large as a gRPC message (16 MiB by default). A query that
selects and sorts whole frames keeps every selected frame's bytes in DuckDB's
buffer pool at once, so these reads page through frame metadata, choose the
frames a read needs, and then fetch those frames' bytes by key, a few MiB at
a time, decoding only the sample range that is used.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import duckdb
import numpy as np
import numpy.typing as npt

from aetus.server.records import ChannelSpec
from aetus.server.store._codec import (
    ENCODING_DTYPES,
    LAYOUT_PLANAR,
    SUMMARY_CHUNK_SAMPLES,
    decode_sample_range,
    decode_samples,
)
from aetus.server.store._parts import join_parts, read_ranges

Int64Array = npt.NDArray[np.int64]
Float64Array = npt.NDArray[np.float64]

# Frame metadata rows fetched per query while paging through a range.
METADATA_ROWS_PER_FETCH = 1024
# Sample bytes fetched per query, except that a small frame is never split.
SAMPLE_BYTES_PER_FETCH = 4 * 1_048_576
# Frames up to this size are fetched whole; of larger ones only the parts
# that hold the samples read.
WHOLE_FRAME_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class FrameMeta:
    """A stored frame without its sample bytes."""

    frame_key: int
    start_time_ns: int
    sample_interval_ns: int
    sample_count: int
    encoding: int
    layout: int
    channels: tuple[ChannelSpec, ...]

    @property
    def byte_count(self) -> int:
        """Size of the frame's sample bytes."""
        dtype = ENCODING_DTYPES.get(self.encoding)
        width = 1 if dtype is None else dtype.itemsize
        return self.sample_count * len(self.channels) * width

    def sample_times(self, first: int, stop: int) -> Int64Array:
        """Return the times of samples ``first`` to ``stop - 1``."""
        steps = np.arange(first, stop, dtype=np.int64)
        return self.start_time_ns + steps * self.sample_interval_ns

    def index_range(self, start_ns: int, end_ns: int) -> tuple[int, int]:
        """Return the first and the stop sample index inside [start_ns, end_ns)."""
        interval = self.sample_interval_ns
        first = max(0, -((self.start_time_ns - start_ns) // interval))
        stop = min(self.sample_count, -(-(end_ns - self.start_time_ns) // interval))
        return first, max(first, stop)


@dataclass(frozen=True, slots=True)
class FrameSlice:
    """Samples ``first`` to ``stop - 1`` of one frame."""

    frame: FrameMeta
    first: int
    stop: int


def iter_frame_metas(
    db: duckdb.DuckDBPyConnection, stream_key: int, start_ns: int, end_ns: int
) -> Iterator[FrameMeta]:
    """Yield the frames with a sample in [start_ns, end_ns), by start time.

    Metadata is fetched in pages of METADATA_ROWS_PER_FETCH rows, so a
    caller that stops early reads no more than it needs.
    """
    layouts = _layouts(db, stream_key)
    sql = (
        "SELECT frame_key, start_time_ns, sample_interval_ns, sample_count, "
        "layout_key FROM frames WHERE stream_key = ? AND start_time_ns < ? "
        "AND end_time_ns >= ?"
    )
    after: tuple[int, int] | None = None
    while True:
        params: list[object] = [stream_key, end_ns, start_ns]
        where = ""
        if after is not None:
            where = " AND (start_time_ns > ? OR (start_time_ns = ? AND frame_key > ?))"
            params += [after[0], after[0], after[1]]
        rows = db.execute(
            f"{sql}{where} ORDER BY start_time_ns, frame_key "
            f"LIMIT {METADATA_ROWS_PER_FETCH}",
            params,
        ).fetchall()
        for key, start, interval, count, layout_key in rows:
            encoding, layout, channels = layouts[layout_key]
            yield FrameMeta(key, start, interval, count, encoding, layout, channels)
        if len(rows) < METADATA_ROWS_PER_FETCH:
            return
        after = (rows[-1][1], rows[-1][0])


def frame_metas_by_key(
    db: duckdb.DuckDBPyConnection, stream_key: int, frame_keys: Int64Array
) -> list[FrameMeta]:
    """Return the metadata of the given frames of a stream, by start time."""
    layouts = _layouts(db, stream_key)
    rows = db.execute(
        "SELECT frame_key, start_time_ns, sample_interval_ns, sample_count, "
        "layout_key FROM frames WHERE stream_key = ? "
        "AND frame_key IN (SELECT unnest(?::BIGINT[])) "
        "ORDER BY start_time_ns, frame_key",
        [stream_key, frame_keys.tolist()],
    ).fetchall()
    metas = []
    for key, start, interval, count, layout_key in rows:
        encoding, layout, channels = layouts[layout_key]
        metas.append(FrameMeta(key, start, interval, count, encoding, layout, channels))
    return metas


def iter_decoded(
    db: duckdb.DuckDBPyConnection,
    stream_key: int,
    slices: list[FrameSlice],
    chunk_samples: int = SUMMARY_CHUNK_SAMPLES,
) -> Iterator[tuple[FrameMeta, Int64Array, Float64Array]]:
    """Yield each slice's sample times and values, in slice order.

    Values have one row per channel of the frame. Frames up to
    WHOLE_FRAME_BYTES are fetched whole, several per query. Of a larger
    frame only the parts that hold the slice are fetched, at most
    SAMPLE_BYTES_PER_FETCH or ``chunk_samples`` samples at a time.
    """
    pending: list[FrameSlice] = []
    pending_bytes = 0
    for item in slices:
        size = item.frame.byte_count
        if size <= WHOLE_FRAME_BYTES:
            if pending and pending_bytes + size > SAMPLE_BYTES_PER_FETCH:
                yield from _decode_whole(db, stream_key, pending)
                pending, pending_bytes = [], 0
            pending.append(item)
            pending_bytes += size
            continue
        yield from _decode_whole(db, stream_key, pending)
        pending, pending_bytes = [], 0
        yield from _decode_ranges(db, stream_key, item, chunk_samples)
    yield from _decode_whole(db, stream_key, pending)


def _decode_whole(
    db: duckdb.DuckDBPyConnection, stream_key: int, slices: list[FrameSlice]
) -> Iterator[tuple[FrameMeta, Int64Array, Float64Array]]:
    if not slices:
        return
    keys = [item.frame.frame_key for item in slices]
    blobs = join_parts(db, "frame_samples", "frame_key", keys)
    missing = [key for key in keys if key not in blobs]
    if missing:
        blobs.update(_inline_samples(db, stream_key, missing))
    for item in slices:
        frame = item.frame
        values = decode_sample_range(
            blobs[frame.frame_key],
            frame.encoding,
            frame.layout,
            frame.sample_count,
            frame.channels,
            item.first,
            item.stop,
        )
        yield frame, frame.sample_times(item.first, item.stop), values


def _decode_ranges(
    db: duckdb.DuckDBPyConnection,
    stream_key: int,
    item: FrameSlice,
    chunk_samples: int,
) -> Iterator[tuple[FrameMeta, Int64Array, Float64Array]]:
    frame = item.frame
    row_bytes = max(1, frame.byte_count // max(1, frame.sample_count))
    step = max(1, min(chunk_samples, SAMPLE_BYTES_PER_FETCH // row_bytes))
    inline: bytes | None = None
    for first in range(item.first, item.stop, step):
        stop = min(item.stop, first + step)
        ranges = _byte_ranges(frame, first, stop)
        pieces = read_ranges(db, "frame_samples", "frame_key", frame.frame_key, ranges)
        if pieces is None:
            # NOTE: frames stored before frame_samples existed keep their
            # bytes inline and are fetched whole, once per read.
            if inline is None:
                inline = _inline_samples(db, stream_key, [frame.frame_key])[
                    frame.frame_key
                ]
            pieces = [inline[low:high] for low, high in ranges]
        values = decode_samples(
            b"".join(pieces), frame.encoding, frame.layout, stop - first, frame.channels
        )
        yield frame, frame.sample_times(first, stop), values


def _byte_ranges(frame: FrameMeta, first: int, stop: int) -> list[tuple[int, int]]:
    """Return the byte ranges that hold samples ``first`` to ``stop - 1``.

    Joined in order, they form the sample bytes of a frame of ``stop - first``
    samples in the same encoding and layout.
    """
    width = len(frame.channels)
    sample_bytes = frame.byte_count // max(1, frame.sample_count * width)
    if frame.layout == LAYOUT_PLANAR:
        plane = frame.sample_count * sample_bytes
        return [
            (row * plane + first * sample_bytes, row * plane + stop * sample_bytes)
            for row in range(width)
        ]
    row_bytes = width * sample_bytes
    return [(first * row_bytes, stop * row_bytes)]


def _inline_samples(
    db: duckdb.DuckDBPyConnection, stream_key: int, keys: list[int]
) -> dict[int, bytes]:
    # No ORDER BY, so DuckDB never sorts or buffers these blobs.
    rows = db.execute(
        "SELECT frame_key, samples FROM frames WHERE stream_key = ? "
        "AND frame_key IN (SELECT unnest(?::BIGINT[]))",
        [stream_key, keys],
    ).fetchall()
    return {int(key): bytes(samples) for key, samples in rows}


def _layouts(
    db: duckdb.DuckDBPyConnection, stream_key: int
) -> dict[int, tuple[int, int, tuple[ChannelSpec, ...]]]:
    names = dict(
        db.execute(
            "SELECT channel_key, name FROM channels WHERE stream_key = ?",
            [stream_key],
        ).fetchall()
    )
    rows = db.execute(
        "SELECT layout_key, encoding, layout, channel_keys, channel_units, scales, "
        "offsets FROM frame_layouts WHERE stream_key = ?",
        [stream_key],
    ).fetchall()
    layouts = {}
    for key, encoding, layout, channel_keys, units, scales, offsets in rows:
        specs = tuple(
            ChannelSpec(names[k], unit, scale, offset)
            for k, unit, scale, offset in zip(
                channel_keys, units, scales, offsets, strict=True
            )
        )
        layouts[key] = (encoding, layout, specs)
    return layouts
