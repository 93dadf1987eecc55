"""Bounded-memory access to signal frames: metadata first, sample bytes in small sets.

A frame may be as large as a gRPC message (16 MiB by default). A query that
selects and sorts sample blobs holds every selected blob in DuckDB's buffer
pool at once, so these reads never sort blobs: they page through frame
metadata, choose the frames a read needs, and then fetch those frames' bytes
by key, a few MiB at a time, decoding only the sample range that is used.
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
    SUMMARY_CHUNK_SAMPLES,
    decode_sample_range,
)

Int64Array = npt.NDArray[np.int64]
Float64Array = npt.NDArray[np.float64]

# Frame metadata rows fetched per query while paging through a range.
METADATA_ROWS_PER_FETCH = 1024
# Sample bytes fetched per query. A larger frame is fetched alone.
SAMPLE_BYTES_PER_FETCH = 8 * 1_048_576


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
    """Yield each slice's sample times and values, at most ``chunk_samples`` a time.

    Values have one row per channel of the frame. Sample bytes are fetched
    SAMPLE_BYTES_PER_FETCH at a time, and only the slice is converted.
    """
    for group in _fetch_groups(slices):
        blobs = _fetch_samples(db, stream_key, [item.frame for item in group])
        for item in group:
            frame, samples = item.frame, blobs[item.frame.frame_key]
            for first in range(item.first, item.stop, chunk_samples):
                stop = min(item.stop, first + chunk_samples)
                values = decode_sample_range(
                    samples,
                    frame.encoding,
                    frame.layout,
                    frame.sample_count,
                    frame.channels,
                    first,
                    stop,
                )
                yield frame, frame.sample_times(first, stop), values
        del blobs


def _fetch_groups(slices: list[FrameSlice]) -> Iterator[list[FrameSlice]]:
    group: list[FrameSlice] = []
    size = 0
    for item in slices:
        if group and size + item.frame.byte_count > SAMPLE_BYTES_PER_FETCH:
            yield group
            group, size = [], 0
        group.append(item)
        size += item.frame.byte_count
    if group:
        yield group


def _fetch_samples(
    db: duckdb.DuckDBPyConnection, stream_key: int, frames: list[FrameMeta]
) -> dict[int, bytes]:
    # The time bounds let DuckDB skip row groups by their min/max statistics
    # before it compares keys. No ORDER BY, so no blob is sorted or buffered.
    starts = [frame.start_time_ns for frame in frames]
    rows = db.execute(
        "SELECT frame_key, samples FROM frames WHERE stream_key = ? "
        "AND start_time_ns BETWEEN ? AND ? "
        "AND frame_key IN (SELECT unnest(?::BIGINT[]))",
        [stream_key, min(starts), max(starts), [f.frame_key for f in frames]],
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
