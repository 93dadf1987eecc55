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
        matrix = raw.reshape(sample_count, width).T
    elif layout == LAYOUT_PLANAR:
        matrix = raw.reshape(width, sample_count)
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
