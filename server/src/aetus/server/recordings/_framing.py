"""Sample encodings and frame assembly shared by the CSV and NPZ readers."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from aetus.server.recordings._model import (
    Int64Array,
    RecordingError,
    SampleArray,
    SignalFrameData,
)

# Largest distance, in sample intervals, between a sample's recorded time and
# its slot on the frame's regular grid.
TIMING_TOLERANCE = 0.1

# Largest default frame, in samples per channel.
MAX_DEFAULT_FRAME_SAMPLES = 4000

_INT_RANGES = {"int16": (-(2**15), 2**15 - 1), "int32": (-(2**31), 2**31 - 1)}


def choose_encoding(values: SampleArray) -> tuple[str, float | None]:
    """Pick the smallest lossless sample encoding for an array of values.

    Integer arrays get int16 or int32, whichever fits their range. A float
    array whose every value lies on a 10**-k grid (k from 0 to 9) becomes
    integers with scale 10**-k. Any other float array becomes float32.

    Returns:
        The numpy dtype name, and the scale or None when raw equals decoded.

    Raises:
        RecordingError: Integer values beyond the int32 range.
    """
    if values.dtype.kind in "iu":
        return integer_encoding(values), None
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0 or not np.all(np.isfinite(data)):
        return "float32", None
    peak = float(np.max(np.abs(data)))
    for decimals in range(10):
        factor = 10.0**decimals
        if peak * factor > 2**31 - 1:
            break
        scaled = np.round(data * factor)
        # Decimal text such as 0.005 has no exact binary form, so a value is
        # on the grid when it is within a few units in the last place of it.
        error = np.abs(scaled / factor - data)
        limit = 4 * np.spacing(np.maximum(np.abs(data), 1.0 / factor))
        if np.all(error <= limit):
            low, high = _INT_RANGES["int16"]
            fits16 = bool(scaled.min() >= low and scaled.max() <= high)
            return ("int16" if fits16 else "int32"), 10.0**-decimals
    return "float32", None


def integer_encoding(values: SampleArray) -> str:
    """Return int16 or int32, whichever fits the integer values' range."""
    if values.size == 0:
        return "int16"
    low, high = int(values.min()), int(values.max())
    for name, (lowest, highest) in _INT_RANGES.items():
        if lowest <= low and high <= highest:
            return name
    raise RecordingError(
        f"integer samples span {low}..{high}, beyond the int32 range; "
        "scale them into range before replaying"
    )


def encode_values(
    values: SampleArray, encoding: str, scale: float | None
) -> SampleArray:
    """Convert decoded values to raw samples of ``encoding``."""
    if scale is None or values.dtype.kind in "iu":
        return values.astype(encoding)
    raw = np.round(np.asarray(values, dtype=np.float64) / scale)
    return raw.astype(encoding)


def interval_ns(sample_rate_hz: float) -> int:
    """Return the sample interval in whole nanoseconds for a rate in Hz."""
    return max(1, round(1e9 / sample_rate_hz))


def default_frame_samples(sample_interval_ns: int, requested: int | None) -> int:
    """Return ``requested``, or the number of samples in about one second."""
    if requested is not None:
        return requested
    per_second = round(1e9 / sample_interval_ns)
    return max(1, min(MAX_DEFAULT_FRAME_SAMPLES, per_second))


def rate_from_name(path: Path) -> float | None:
    """Return the rate of a ``<N>hz`` or ``<N>khz`` token in the file name."""
    pattern = r"(?:^|[_\-.])(\d+(?:\.\d+)?)(k?)hz(?=[_\-.]|$)"
    match = re.search(pattern, path.name.lower())
    if match is None:
        return None
    return float(match.group(1)) * (1000.0 if match.group(2) else 1.0)


def slug(text: str) -> str:
    """Return a lower-case name of letters, digits and underscores."""
    name = re.sub(r"[^a-z0-9]+", "_", text.strip().lower()).strip("_")
    return name or "value"


def frames_from_regular(
    samples: SampleArray, start_offset_ns: int, sample_interval_ns: int, size: int
) -> list[SignalFrameData]:
    """Cut contiguous regular samples, shaped (count, channels), into frames."""
    frames = []
    for first in range(0, len(samples), size):
        block = np.ascontiguousarray(samples[first : first + size])
        offset = start_offset_ns + first * sample_interval_ns
        frames.append(SignalFrameData(offset, block))
    return frames


def frames_from_timed(
    times_ns: Int64Array, samples: SampleArray, sample_interval_ns: int, size: int
) -> tuple[list[SignalFrameData], int]:
    """Cut timed samples into frames on a regular grid.

    ``times_ns`` must be strictly increasing. A frame ends when it is full, or
    before a sample that lies further than ``TIMING_TOLERANCE`` intervals from
    its grid slot, and that sample starts the next frame.

    Returns:
        The frames, and the number of frames that timing ended early.
    """
    tolerance = TIMING_TOLERANCE * sample_interval_ns
    frames: list[SignalFrameData] = []
    early_ends = 0
    first = 0
    while first < len(times_ns):
        window = times_ns[first : first + size]
        grid = window[0] + np.arange(len(window), dtype=np.int64) * sample_interval_ns
        off_grid = np.flatnonzero(np.abs(window - grid) > tolerance)
        end = first + (int(off_grid[0]) if off_grid.size else len(window))
        early_ends += int(off_grid.size > 0)
        block = np.ascontiguousarray(samples[first:end])
        frames.append(SignalFrameData(int(times_ns[first]), block))
        first = end
    return frames, early_ends
