"""Reader for CSV recordings: a header row, an optional time column, numbers."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from aetus.server.recordings._framing import (
    choose_encoding,
    default_frame_samples,
    encode_values,
    frames_from_regular,
    frames_from_timed,
    interval_ns,
    rate_from_name,
    slug,
)
from aetus.server.recordings._model import (
    Channel,
    Float64Array,
    Int64Array,
    MetricTrack,
    ReadOptions,
    Recording,
    RecordingError,
    SignalTrack,
)

# Median row step at or above which a timed CSV is read as metrics.
METRIC_STEP_NS = 1_000_000_000

# Sentinel that the UCI air-quality data set uses for a missing reading.
AIR_QUALITY_MISSING = -200.0

# Stream names and units for the UCI air-quality columns. The *_GT columns
# come from a certified reference analyser, the PT08_* ones from the device.
_AIR_QUALITY_COLUMNS = {
    "CO_GT_mg_m3": ("ref/co", "mg/m3"),
    "PT08_S1_CO": ("gas/pt08_s1_co", ""),
    "NMHC_GT_ug_m3": ("ref/nmhc", "ug/m3"),
    "C6H6_GT_ug_m3": ("ref/c6h6", "ug/m3"),
    "PT08_S2_NMHC": ("gas/pt08_s2_nmhc", ""),
    "NOx_GT_ppb": ("ref/nox", "ppb"),
    "PT08_S3_NOx": ("gas/pt08_s3_nox", ""),
    "NO2_GT_ug_m3": ("ref/no2", "ug/m3"),
    "PT08_S4_NO2": ("gas/pt08_s4_no2", ""),
    "PT08_S5_O3": ("gas/pt08_s5_o3", ""),
    "T_degC": ("env/temperature", "degC"),
    "RH_pct": ("env/humidity_rel", "%"),
    "AH": ("env/humidity_abs", ""),
}

# Full sensor names shortened to the usual stream names.
_QUANTITY_STREAMS = {
    "gyroscope": "imu/gyro",
    "accelerometer": "imu/accel",
    "magnetometer": "imu/mag",
}

# Unit suffixes of snake_case column names, such as ``ecg_mv``.
_UNIT_SUFFIXES = {
    "mv": "mV",
    "uv": "uV",
    "ma": "mA",
    "degc": "degC",
    "pct": "%",
    "ppb": "ppb",
    "ppm": "ppm",
    "mg_m3": "mg/m3",
    "ug_m3": "ug/m3",
}

_TIME_HEADER = re.compile(
    r"^(?:time|timestamp|datetime|t)(?:\s*\((?P<paren>s|ms|us|ns)\)|_(?P<suffix>s|ms|us|ns))?$",
    re.IGNORECASE,
)
_AXIS_HEADER = re.compile(
    r"^(?P<name>.*?)[\s_]+(?P<axis>[xyz])(?:\s*\((?P<unit>[^)]*)\))?$", re.I
)
_UNIT_HEADER = re.compile(r"^(?P<name>.*?)\s*\((?P<unit>[^)]*)\)$")
_NS_PER_UNIT = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}


@dataclass(frozen=True)
class _Column:
    """Destination of a value column: a stream, its channel and the unit."""

    stream: str
    channel: str
    unit: str


def read_csv(path: Path, options: ReadOptions) -> Recording:
    """Read a CSV recording as signal frames or metrics.

    See the package docstring for the rules.
    """
    header, rows = _load(path)
    time_index = _time_column(header)
    value_indices = [i for i in range(len(header)) if i != time_index]
    if not value_indices:
        raise RecordingError(f"{path.name!r} has no value column besides the time")
    values = _parse_values(path, header, rows, value_indices)
    air_quality = "PT08_S1_CO" in header
    sentinel = options.missing_value
    if sentinel is None and air_quality:
        sentinel = AIR_QUALITY_MISSING
    if sentinel is not None:
        values[values == sentinel] = np.nan
    columns = [_name_column(header[i], air_quality) for i in value_indices]

    recording = Recording(path)
    if time_index is None:
        rate = _regular_rate(path, options)
        offsets = np.arange(len(rows), dtype=np.int64) * interval_ns(rate)
        recording.notes.append(f"{len(rows)} regular rows at {rate:g} Hz")
        timed = False
    else:
        offsets, keep = _parse_times(
            path, header[time_index], rows, time_index, recording
        )
        values = values[keep]
        timed = True
    as_metrics = options.as_metrics or (
        timed
        and len(offsets) > 1
        and int(np.median(np.diff(offsets))) >= METRIC_STEP_NS
    )
    if as_metrics:
        recording.metrics.extend(_metric_tracks(columns, offsets, values, options))
        _note_missing(recording, columns, values, sentinel, options)
    else:
        recording.signals.extend(
            _signal_tracks(columns, offsets, values, timed, options, recording)
        )
    return recording


def _load(path: Path) -> tuple[list[str], list[list[str]]]:
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            table = [row for row in csv.reader(handle) if row]
    except (OSError, UnicodeDecodeError) as exc:
        raise RecordingError(
            f"{path.name!r} cannot be read as UTF-8 CSV: {exc}"
        ) from exc
    if len(table) < 2:
        raise RecordingError(
            f"{path.name!r} has {len(table)} non-empty line(s); "
            "expected a header row and at least one data row"
        )
    header = [cell.strip() for cell in table[0]]
    for number, row in enumerate(table[1:], start=2):
        if len(row) != len(header):
            raise RecordingError(
                f"{path.name!r} line {number} has {len(row)} cells, but the header has "
                f"{len(header)}; every row needs one cell per column"
            )
    return header, table[1:]


def _time_column(header: list[str]) -> int | None:
    for index, name in enumerate(header):
        if _TIME_HEADER.match(name):
            return index
    return None


def _parse_values(
    path: Path, header: list[str], rows: list[list[str]], indices: list[int]
) -> Float64Array:
    values = np.empty((len(rows), len(indices)), dtype=np.float64)
    for number, row in enumerate(rows):
        for position, index in enumerate(indices):
            cell = row[index].strip()
            try:
                values[number, position] = float(cell) if cell else np.nan
            except ValueError:
                raise RecordingError(
                    f"{path.name!r} line {number + 2}, column {header[index]!r}: "
                    f"{cell!r} is not a number; use a decimal number or leave it empty"
                ) from None
    return values


def _parse_times(
    path: Path, name: str, rows: list[list[str]], index: int, recording: Recording
) -> tuple[Int64Array, np.ndarray]:
    """Return offsets from the first row and a mask of the rows to keep."""
    cells = [row[index].strip() for row in rows]
    match = _TIME_HEADER.match(name)
    unit = (match and (match.group("paren") or match.group("suffix"))) or "s"
    try:
        times = np.array(
            [round(float(cell) * _NS_PER_UNIT[unit]) for cell in cells], dtype=np.int64
        )
    except ValueError:
        times = _parse_iso_times(path, name, cells, recording)
    steps = np.diff(times)
    backwards = np.flatnonzero(steps < 0)
    if backwards.size:
        line = int(backwards[0]) + 3
        raise RecordingError(
            f"{path.name!r} line {line}: time {cells[line - 2]!r} is earlier than the "
            f"row before ({cells[line - 3]!r}); sort the rows by {name!r}"
        )
    keep = np.concatenate([[True], steps != 0])
    repeated = int(np.count_nonzero(~keep))
    if repeated:
        recording.notes.append(
            f"dropped {repeated} row(s) that repeat the previous row's time"
        )
    return times[keep] - times[0], keep


def _parse_iso_times(
    path: Path, name: str, cells: list[str], recording: Recording
) -> Int64Array:
    times = np.empty(len(cells), dtype=np.int64)
    naive = False
    for number, cell in enumerate(cells):
        try:
            moment = datetime.fromisoformat(cell)
        except ValueError:
            raise RecordingError(
                f"{path.name!r} line {number + 2}, column {name!r}: {cell!r} is "
                "neither seconds nor an ISO 8601 time such as 2004-03-10T18:00:00"
            ) from None
        naive = naive or moment.tzinfo is None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
        times[number] = (
            delta.days * 86_400 + delta.seconds
        ) * 10**9 + delta.microseconds * 1000
    if naive:
        recording.notes.append(
            f"times in {name!r} have no zone; their spacing is kept as written"
        )
    return times


def _name_column(header: str, air_quality: bool) -> _Column:
    if air_quality and header in _AIR_QUALITY_COLUMNS:
        stream, unit = _AIR_QUALITY_COLUMNS[header]
        return _Column(stream, "value", unit)
    axis = _AXIS_HEADER.match(header)
    if axis:
        quantity = slug(axis.group("name"))
        stream = _QUANTITY_STREAMS.get(quantity, quantity)
        return _Column(
            stream, axis.group("axis").lower(), (axis.group("unit") or "").strip()
        )
    with_unit = _UNIT_HEADER.match(header)
    if with_unit:
        name = slug(with_unit.group("name"))
        return _Column(name, name, with_unit.group("unit").strip())
    name = slug(header)
    for suffix, unit in _UNIT_SUFFIXES.items():
        if name.endswith("_" + suffix) and len(name) > len(suffix) + 1:
            base = name[: -len(suffix) - 1]
            return _Column(base, base, unit)
    return _Column(name, name, "")


def _regular_rate(path: Path, options: ReadOptions) -> float:
    rate = options.sample_rate_hz or rate_from_name(path)
    if rate is None:
        raise RecordingError(
            f"{path.name!r} has no time column and no <N>hz in its name; "
            "pass the sample rate with --sample-rate-hz"
        )
    return rate


def _metric_tracks(
    columns: list[_Column],
    offsets: Int64Array,
    values: Float64Array,
    options: ReadOptions,
) -> list[MetricTrack]:
    tracks = []
    for position, column in enumerate(columns):
        name = (
            column.stream
            if column.channel in ("value", column.stream)
            else (f"{column.stream}_{column.channel}")
        )
        series = values[:, position]
        present = ~np.isnan(series)
        if options.missing == "skip":
            track = MetricTrack(
                name, column.unit, offsets[present], series[present].copy()
            )
        else:
            track = MetricTrack(name, column.unit, offsets.copy(), series.copy())
        tracks.append(track)
    return tracks


def _note_missing(
    recording: Recording,
    columns: list[_Column],
    values: Float64Array,
    sentinel: float | None,
    options: ReadOptions,
) -> None:
    missing = int(np.count_nonzero(np.isnan(values)))
    if not missing:
        return
    marker = f"empty or {sentinel:g}" if sentinel is not None else "empty"
    action = "skipped" if options.missing == "skip" else "sent as NaN"
    recording.notes.append(f"{missing} missing reading(s) ({marker}) {action}")


def _signal_tracks(
    columns: list[_Column],
    offsets: Int64Array,
    values: Float64Array,
    timed: bool,
    options: ReadOptions,
    recording: Recording,
) -> list[SignalTrack]:
    step = (
        int(np.median(np.diff(offsets)))
        if len(offsets) > 1
        else interval_ns(options.sample_rate_hz or 1.0)
    )
    size = default_frame_samples(step, options.frame_samples)
    groups: dict[str, list[int]] = {}
    for position, column in enumerate(columns):
        groups.setdefault(column.stream, []).append(position)
    tracks = []
    for stream, positions in groups.items():
        block = values[:, positions]
        encoding, scale = choose_encoding(block)
        raw = encode_values(block, encoding, scale)
        if timed:
            frames, early = frames_from_timed(offsets, raw, step, size)
        else:
            frames, early = frames_from_regular(raw, 0, step, size), 0
        channels = tuple(
            Channel(columns[p].channel, columns[p].unit) for p in positions
        )
        tracks.append(SignalTrack(stream, channels, step, encoding, scale, frames))
        scale_text = f" with scale {scale:g}" if scale is not None else ""
        recording.notes.append(
            f"{stream}: {len(frames)} frame(s) at {1e9 / step:.4g} Hz, "
            f"{encoding}{scale_text}, {early} started early at a timing gap"
        )
    return tracks
