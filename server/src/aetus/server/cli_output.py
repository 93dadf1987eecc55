"""Terminal output of the ``aetus`` client commands: tables, CSV and times."""

from __future__ import annotations

import csv
import math
import re
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np

from aetus.sdk import EnvelopeSeries, Series

if TYPE_CHECKING:
    from aetus.sdk import StreamData

__all__ = [
    "TimeArgumentError",
    "channel_units",
    "format_time_ns",
    "parse_time",
    "print_devices",
    "print_stream_data",
    "print_streams",
]

_RELATIVE = re.compile(r"^-(\d+(?:\.\d+)?)(s|m|h|d)$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


class TimeArgumentError(ValueError):
    """A time flag contains text that is not a time."""


def parse_time(text: str | None, flag: str, now_ns: int | None = None) -> int | None:
    """Parse an ISO 8601 time with a zone, or ``-<n>s|m|h|d`` before now, to ns.

    Raises:
        TimeArgumentError: The text is neither form, or has no zone.
    """
    if text is None:
        return None
    relative = _RELATIVE.match(text.strip())
    if relative:
        now = time.time_ns() if now_ns is None else now_ns
        seconds = float(relative.group(1)) * _SECONDS[relative.group(2)]
        return now - round(seconds * 1e9)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise TimeArgumentError(
            f"{flag} {text!r} is not a time; use ISO 8601 such as "
            "2026-05-01T12:00:00Z, or -30s, -5m, -2h, -1d"
        ) from None
    if moment.tzinfo is None:
        raise TimeArgumentError(
            f"{flag} {text!r} has no time zone; add Z or an offset such as +02:00"
        )
    whole_seconds = math.floor(moment.timestamp())
    return whole_seconds * 1_000_000_000 + moment.microsecond * 1000


def format_time_ns(time_ns: int) -> str:
    """Format ns since the epoch as ISO 8601 UTC with nanoseconds."""
    text = np.datetime_as_string(np.datetime64(int(time_ns), "ns"), unit="ns")
    return f"{text}Z"


def print_streams(streams: Sequence[Any], out: TextIO, *, as_csv: bool) -> None:
    """Print a device's streams: name, kind, unit or channels, points, rate."""
    rows = [["stream", "kind", "unit", "points", "first", "last", "rate_hz"]]
    for stream in streams:
        kind = "sampled" if stream.kind == 2 else "scalar"
        unit = stream.unit or channel_units(stream.channels)
        first = format_time_ns(stream.first_time.ToNanoseconds())
        last = format_time_ns(stream.last_time.ToNanoseconds())
        rate = f"{stream.nominal_rate_hz:g}" if stream.nominal_rate_hz else ""
        rows.append(
            [stream.name, kind, unit, str(stream.point_count), first, last, rate]
        )
    _emit(rows, out, as_csv)


def channel_units(channels: Sequence[Any]) -> str:
    """Return ``name: unit`` for each channel, with ``-`` for a channel without one."""
    return ", ".join(f"{channel.name}: {channel.unit or '-'}" for channel in channels)


def print_devices(devices: Sequence[Any], out: TextIO) -> None:
    """Print registered devices, one row each."""
    rows = [
        ["device_id", "hardware_id", "model", "site", "token", "last_seen", "events"]
    ]
    for device in devices:
        token = {1: "active", 2: "revoked"}.get(device.token_state, "unknown")
        seen = ""
        if device.HasField("last_seen_time"):
            seen = format_time_ns(device.last_seen_time.ToNanoseconds())
        rows.append(
            [
                device.device_id,
                device.hardware_id,
                device.model,
                device.site,
                token,
                seen,
                str(device.event_count),
            ]
        )
    _emit(rows, out, as_csv=False)


def print_stream_data(data: StreamData, out: TextIO, *, as_csv: bool) -> None:
    """Print raw points (one column per channel) or envelope buckets."""
    # CSV keeps every digit (repr round-trips a float64); the table shows ten
    # significant digits, enough for any sensor and free of binary noise.
    number = _exact if as_csv else _short
    if data.mode == "envelope":
        _emit(_bucket_rows(data, number), out, as_csv)
    else:
        _emit(_point_rows(data, number), out, as_csv)


def _point_rows(data: StreamData, number: Callable[[float], str]) -> list[list[str]]:
    series = [item for item in data.series.values() if isinstance(item, Series)]
    names = [
        _column_name(item.channel or data.stream.name, item.unit) for item in series
    ]
    rows = [["time", *names]]
    if not series:
        return rows
    # Channels of one signal stream share their sample times, so they line up
    # by index. A channel that differs is printed below the others.
    aligned = all(np.array_equal(item.times, series[0].times) for item in series)
    groups = [series] if aligned else [[item] for item in series]
    for group in groups:
        for index in range(len(group[0])):
            row = [format_time_ns(int(group[0].times_ns[index]))]
            for item in series:
                row.append(_cell(item, index, number) if item in group else "")
            rows.append(row)
    return rows


def _column_name(name: str, unit: str) -> str:
    return f"{name} [{unit}]" if unit else name


def _cell(series: Series, index: int, number: Callable[[float], str]) -> str:
    if bool(series.gaps[index]):
        return "gap"
    if bool(series.missing[index]):
        return "missing"
    value = series.values[index]
    if isinstance(value, float | np.floating):
        return number(float(value))
    return str(value)


def _bucket_rows(data: StreamData, number: Callable[[float], str]) -> list[list[str]]:
    rows = [["channel", "unit", "start", "end", "count", "min", "max", "mean"]]
    for name, series in data.series.items():
        if not isinstance(series, EnvelopeSeries):
            continue
        for index in range(len(series)):
            rows.append(
                [
                    name or data.stream.name,
                    series.unit,
                    format_time_ns(int(series.start_times[index].view(np.int64))),
                    format_time_ns(int(series.end_times[index].view(np.int64))),
                    str(int(series.counts[index])),
                    _optional(series.mins[index], number),
                    _optional(series.maxs[index], number),
                    _optional(series.means[index], number),
                ]
            )
    return rows


def _optional(value: float, number: Callable[[float], str]) -> str:
    return "" if math.isnan(value) else number(float(value))


def _exact(value: float) -> str:
    return repr(value)


def _short(value: float) -> str:
    return f"{value:.10g}"


def _emit(rows: list[list[str]], out: TextIO, as_csv: bool) -> None:
    if as_csv:
        csv.writer(out, lineterminator="\n").writerows(rows)
        return
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        out.write(
            "  ".join(
                cell.ljust(width) for cell, width in zip(row, widths, strict=True)
            ).rstrip()
        )
        out.write("\n")
