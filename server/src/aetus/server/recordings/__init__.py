"""Readers that turn CSV and NPZ sensor recordings into signal frames and metrics.

A recording becomes a ``Recording``: signal tracks (regularly sampled channels,
already cut into frames) and metric tracks (scalar points at their own times).
Every time is an offset in nanoseconds from the recording's first row, so the
caller decides where on the clock the recording lands.

Rules the readers apply:

- A CSV with a time column (``Time (s)``, ``time_ms``, or ``timestamp`` with
  ISO 8601 times) whose median step is under one second becomes signal frames.
  A CSV with coarser steps becomes metrics, one stream per column.
- A CSV without a time column contains regular rows. Its sample rate comes from
  the options or from a ``<N>hz`` token in the file name, such as ``360hz``.
- Columns named ``<Sensor> X|Y|Z (<unit>)`` form one stream with channels
  x, y and z. Gyroscope, accelerometer and magnetometer columns become the
  streams ``imu/gyro``, ``imu/accel`` and ``imu/mag``.
- Frames assume a regular interval: the median step between rows. A row that
  repeats the previous row's time is dropped as a duplicate. A frame ends
  before any sample further than ``TIMING_TOLERANCE`` intervals from its slot
  on the frame's grid, so each sample's time is within that tolerance of its
  recorded time.
- Float values on a decimal grid (for example 3 or 6 decimals) are sent as
  int16 or int32 with a scale of 10**-k, which keeps them exactly. Other
  floats are sent as float32.
- Empty cells and the sentinel ``missing_value`` mark missing readings (-200
  is the default for the UCI air-quality columns). A missing metric reading is
  skipped, or sent as NaN when ``missing="nan"``. In signal frames it is NaN.
- NPZ captures (the first axis of a 3-D array) were recorded separately, so
  they are placed ``capture_gap_s`` apart rather than back to back.
"""

from __future__ import annotations

from pathlib import Path

from aetus.server.recordings._csv import AIR_QUALITY_MISSING, read_csv
from aetus.server.recordings._framing import TIMING_TOLERANCE, choose_encoding
from aetus.server.recordings._model import (
    Channel,
    MetricTrack,
    ReadOptions,
    Recording,
    RecordingError,
    SignalFrameData,
    SignalTrack,
)
from aetus.server.recordings._npz import read_npz

__all__ = [
    "AIR_QUALITY_MISSING",
    "TIMING_TOLERANCE",
    "Channel",
    "MetricTrack",
    "ReadOptions",
    "Recording",
    "RecordingError",
    "SignalFrameData",
    "SignalTrack",
    "choose_encoding",
    "read_recording",
]


def read_recording(path: Path, options: ReadOptions | None = None) -> Recording:
    """Read a CSV or NPZ recording.

    Raises:
        RecordingError: The file is missing, has another suffix, or its
            contents break the rules in this module's docstring.
    """
    options = options or ReadOptions()
    options.validate()
    if not path.is_file():
        raise RecordingError(
            f"recording {str(path)!r} not found; pass a CSV or NPZ file"
        )
    suffix = path.suffix.lower()
    if suffix == ".csv":
        recording = read_csv(path, options)
    elif suffix == ".npz":
        recording = read_npz(path, options)
    else:
        raise RecordingError(
            f"recording {str(path)!r} has suffix {suffix!r}; "
            "only .csv and .npz files can be replayed"
        )
    if options.stream is not None:
        _rename_single_stream(recording, options.stream)
    return recording


def _rename_single_stream(recording: Recording, stream: str) -> None:
    if len(recording.signals) != 1:
        raise RecordingError(
            f"a stream name was given, but {recording.path.name!r} has "
            f"{len(recording.signals)} signal streams; leave out the stream name"
        )
    old = recording.signals[0]
    recording.signals[0] = SignalTrack(
        stream,
        old.channels,
        old.sample_interval_ns,
        old.encoding,
        old.scale,
        old.frames,
    )
