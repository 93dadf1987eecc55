"""Data model of a recording read from a file: signal tracks and metric tracks."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

Int64Array = npt.NDArray[np.int64]
Float64Array = npt.NDArray[np.float64]
SampleArray = npt.NDArray[np.generic]


class RecordingError(ValueError):
    """A recording cannot be read; the message names the file, value and fix."""


@dataclass(frozen=True)
class Channel:
    """One channel of a signal track: a name and the unit of its decoded value."""

    name: str
    unit: str


@dataclass(frozen=True)
class SignalFrameData:
    """One frame: its first sample's offset and its samples as (count, channels)."""

    offset_ns: int
    samples: SampleArray


@dataclass(frozen=True)
class SignalTrack:
    """A regularly sampled stream cut into frames.

    ``encoding`` is the numpy dtype name of every frame's samples (``int16``,
    ``int32`` or ``float32``). A decoded value is ``raw * scale`` when
    ``scale`` is set, and the raw value otherwise.
    """

    stream: str
    channels: tuple[Channel, ...]
    sample_interval_ns: int
    encoding: str
    scale: float | None
    frames: list[SignalFrameData]

    @property
    def sample_count(self) -> int:
        """Samples per channel over all frames."""
        return sum(len(frame.samples) for frame in self.frames)

    @property
    def end_offset_ns(self) -> int:
        """Offset of the last sample."""
        last = self.frames[-1]
        return last.offset_ns + (len(last.samples) - 1) * self.sample_interval_ns


@dataclass(frozen=True)
class MetricTrack:
    """A scalar stream: one value per offset, float64 numbers or string markers."""

    name: str
    unit: str
    offsets_ns: Int64Array
    values: Float64Array | list[str]


@dataclass
class Recording:
    """Signal and metric tracks read from one file, timed from its first sample."""

    path: Path
    signals: list[SignalTrack] = field(default_factory=list)
    metrics: list[MetricTrack] = field(default_factory=list)
    # One line per thing the reader changed or inferred, shown to the user.
    notes: list[str] = field(default_factory=list)

    @property
    def duration_ns(self) -> int:
        """Offset of the last sample or point."""
        ends = [0]
        ends.extend(track.end_offset_ns for track in self.signals if track.frames)
        ends.extend(
            int(track.offsets_ns[-1]) for track in self.metrics if len(track.offsets_ns)
        )
        return max(ends)


@dataclass(frozen=True)
class ReadOptions:
    """How to read a recording; ``None`` means: infer it from the file.

    Attributes:
        sample_rate_hz: Rate of a CSV without a time column, or of an NPZ
            without a ``sample_rate_hz`` array.
        frame_samples: Samples per channel in one frame. Default: about one
            second of samples, at least 1 and at most 4000.
        missing: ``"skip"`` drops a missing reading, ``"nan"`` keeps it as NaN.
        missing_value: Sentinel that marks a missing reading, in addition to
            empty cells. Default: -200 for the UCI air-quality columns, none
            otherwise.
        capture_gap_s: Time between the end of one NPZ capture and the start
            of the next, in seconds.
        stream: Name for the signal stream of a recording that has exactly one.
        as_metrics: Read a timed CSV as metrics even when it is densely sampled.
    """

    sample_rate_hz: float | None = None
    frame_samples: int | None = None
    missing: Literal["skip", "nan"] = "skip"
    missing_value: float | None = None
    capture_gap_s: float = 1.0
    stream: str | None = None
    as_metrics: bool = False

    def validate(self) -> None:
        """Raise RecordingError when an option is out of range."""
        rate = self.sample_rate_hz
        if rate is not None and not (math.isfinite(rate) and rate > 0):
            raise RecordingError(
                f"sample rate {rate!r} Hz is invalid; "
                "give a positive number of samples per second"
            )
        frame = self.frame_samples
        if frame is not None and not 1 <= frame <= 100_000:
            raise RecordingError(
                f"frame size {frame!r} samples is outside 1..100000; "
                "choose a size in that range"
            )
        gap = self.capture_gap_s
        if not (math.isfinite(gap) and gap >= 0):
            raise RecordingError(
                f"capture gap {gap!r} s is invalid; give 0 or more seconds"
            )
        if self.missing not in ("skip", "nan"):
            raise RecordingError(
                f"missing={self.missing!r} is invalid; use skip or nan"
            )
