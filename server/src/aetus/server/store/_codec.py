"""Decoding of signal-frame sample bytes and per-channel frame summaries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from aetus.server.records import ChannelSpec

# numpy dtype of each aetus.telemetry.v1.SampleEncoding number.
ENCODING_DTYPES: dict[int, np.dtype[np.generic]] = {
    1: np.dtype("<f4"),
    2: np.dtype("<i2"),
    3: np.dtype("<u2"),
    4: np.dtype("<i4"),
}
LAYOUT_INTERLEAVED = 1
LAYOUT_PLANAR = 2

# Samples per channel decoded at once when a frame is summarised or read.
# A chunk of 256 Ki samples of one channel takes 2 MiB as float64, and its
# summary or envelope needs a few times that in temporaries.
SUMMARY_CHUNK_SAMPLES = 1 << 18


class FrameDecodeError(ValueError):
    """Sample bytes that do not match the frame's encoding, layout or size."""


def decode_samples(
    samples: bytes,
    encoding: int,
    layout: int,
    sample_count: int,
    channels: Sequence[ChannelSpec],
) -> npt.NDArray[np.float64]:
    """Decode raw frame samples into scaled values, one row per channel.

    Args:
        samples: The sample bytes as the device sent them.
        encoding: aetus.telemetry.v1.SampleEncoding number.
        layout: aetus.telemetry.v1.SampleLayout number; 0 means interleaved.
        sample_count: Samples per channel.
        channels: Channel specs in the order their samples appear.

    Returns:
        A float64 array of shape (len(channels), sample_count) holding
        ``raw * scale + offset`` for each channel.

    Raises:
        FrameDecodeError: The encoding or layout is unknown, or the byte
            count differs from sample_count * len(channels) * sample width.
    """
    return decode_sample_range(
        samples, encoding, layout, sample_count, channels, 0, sample_count
    )


def decode_sample_range(
    samples: bytes,
    encoding: int,
    layout: int,
    sample_count: int,
    channels: Sequence[ChannelSpec],
    first: int,
    stop: int,
) -> npt.NDArray[np.float64]:
    """Decode samples ``first`` to ``stop - 1`` of a frame, one row per channel.

    Only that range is converted to float64, so the memory used is that of
    the range, not of the frame. Arguments and errors are those of
    ``decode_samples``.
    """
    dtype = ENCODING_DTYPES.get(encoding)
    if dtype is None:
        raise FrameDecodeError(
            f"Sample encoding {encoding} is not supported; "
            f"use one of {sorted(ENCODING_DTYPES)}"
        )
    width = len(channels)
    expected = sample_count * width * dtype.itemsize
    if len(samples) != expected:
        raise FrameDecodeError(
            f"Frame has {len(samples)} sample bytes, expected {expected} "
            f"({sample_count} samples x {width} channels x {dtype.itemsize} bytes)"
        )
    raw = np.frombuffer(samples, dtype=dtype)
    if layout in (0, LAYOUT_INTERLEAVED):
        matrix = raw.reshape(sample_count, width)[first:stop].T
    elif layout == LAYOUT_PLANAR:
        matrix = raw.reshape(width, sample_count)[:, first:stop]
    else:
        raise FrameDecodeError(
            f"Sample layout {layout} is not supported; use 1 (interleaved) "
            "or 2 (planar)"
        )
    values = matrix.astype(np.float64)
    for row, channel in enumerate(channels):
        if channel.scale is not None and channel.scale != 1.0:
            values[row] *= channel.scale
        if channel.offset is not None and channel.offset != 0.0:
            values[row] += channel.offset
    return values


@dataclass(frozen=True, slots=True)
class ChannelSummary:
    """Statistics of one channel of one frame, over its finite values.

    ``min_index`` and ``max_index`` are sample indices within the frame. The
    value fields are None when the channel has no finite value.
    """

    count: int
    finite_count: int
    minimum: float | None
    maximum: float | None
    min_index: int | None
    max_index: int | None
    first_index: int | None
    last_index: int | None
    first: float | None
    last: float | None
    total: float


def summarize_channels(values: npt.NDArray[np.float64]) -> list[ChannelSummary]:
    """Summarise each row (channel) of a decoded frame."""
    finite = np.isfinite(values)
    finite_counts = finite.sum(axis=1)

    low = np.where(finite, values, np.inf)
    high = np.where(finite, values, -np.inf)
    min_index = np.argmin(low, axis=1)
    max_index = np.argmax(high, axis=1)
    first_index = np.argmax(finite, axis=1)
    last_index = values.shape[1] - 1 - np.argmax(finite[:, ::-1], axis=1)
    totals = np.where(finite, values, 0.0).sum(axis=1)

    summaries = []
    for row in range(values.shape[0]):
        if finite_counts[row] == 0:
            summaries.append(
                ChannelSummary(
                    values.shape[1],
                    0,
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                    0.0,
                )
            )
            continue
        summaries.append(
            ChannelSummary(
                count=int(values.shape[1]),
                finite_count=int(finite_counts[row]),
                minimum=float(values[row, min_index[row]]),
                maximum=float(values[row, max_index[row]]),
                min_index=int(min_index[row]),
                max_index=int(max_index[row]),
                first_index=int(first_index[row]),
                last_index=int(last_index[row]),
                first=float(values[row, first_index[row]]),
                last=float(values[row, last_index[row]]),
                total=float(totals[row]),
            )
        )
    return summaries


def summarize_frame(
    samples: bytes,
    encoding: int,
    layout: int,
    sample_count: int,
    channels: Sequence[ChannelSpec],
    chunk_samples: int = SUMMARY_CHUNK_SAMPLES,
) -> list[ChannelSummary]:
    """Decode and summarise a frame, ``chunk_samples`` samples at a time.

    A frame of at most ``chunk_samples`` samples is summarised in one step,
    exactly as ``summarize_channels`` does. A longer one is decoded in
    chunks whose summaries are merged, so memory stays bounded by the chunk
    however large the frame is. The merged total then adds chunk sums, which
    can differ from a single sum in the last bits.

    Raises:
        FrameDecodeError: As ``decode_samples``.
    """
    merged: list[ChannelSummary] | None = None
    for first in range(0, max(1, sample_count), chunk_samples):
        stop = min(sample_count, first + chunk_samples)
        values = decode_sample_range(
            samples, encoding, layout, sample_count, channels, first, stop
        )
        part = [_shift(item, first) for item in summarize_channels(values)]
        merged = part if merged is None else _merge_all(merged, part)
    assert merged is not None
    return merged


def _shift(summary: ChannelSummary, offset: int) -> ChannelSummary:
    def moved(index: int | None) -> int | None:
        return None if index is None else index + offset

    return ChannelSummary(
        summary.count,
        summary.finite_count,
        summary.minimum,
        summary.maximum,
        moved(summary.min_index),
        moved(summary.max_index),
        moved(summary.first_index),
        moved(summary.last_index),
        summary.first,
        summary.last,
        summary.total,
    )


def _merge_all(
    earlier: list[ChannelSummary], later: list[ChannelSummary]
) -> list[ChannelSummary]:
    return [_merge(a, b) for a, b in zip(earlier, later, strict=True)]


def _merge(a: ChannelSummary, b: ChannelSummary) -> ChannelSummary:
    """Merge the summaries of two consecutive sample ranges of one channel."""
    if b.finite_count == 0 or a.finite_count == 0:
        # At most one side has finite values, and its statistics are the result.
        finite = b if a.finite_count == 0 else a
        return ChannelSummary(
            a.count + b.count,
            finite.finite_count,
            finite.minimum,
            finite.maximum,
            finite.min_index,
            finite.max_index,
            finite.first_index,
            finite.last_index,
            finite.first,
            finite.last,
            a.total + b.total,
        )
    assert a.minimum is not None and b.minimum is not None
    assert a.maximum is not None and b.maximum is not None
    # Ties keep the earlier sample, as numpy's argmin and argmax do.
    low = b if b.minimum < a.minimum else a
    high = b if b.maximum > a.maximum else a
    return ChannelSummary(
        count=a.count + b.count,
        finite_count=a.finite_count + b.finite_count,
        minimum=low.minimum,
        maximum=high.maximum,
        min_index=low.min_index,
        max_index=high.max_index,
        first_index=a.first_index,
        last_index=b.last_index,
        first=a.first,
        last=b.last,
        total=a.total + b.total,
    )
