"""Writing one normalised batch inside an open transaction.

DuckDB has no savepoints, so a batch is made atomic by checking everything
that can reject it (value types, frame bytes) before its first write. After
that only a database failure can stop it, and the caller rolls back the whole
transaction for that.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import duckdb
import numpy as np
import numpy.typing as npt
from aetus.server.records import (
    FrameRecord,
    MetricSeriesPoints,
    NormalizedBatch,
    SeriesTypeConflict,
    StoreError,
    ValueType,
)
from aetus.server.store._codec import FrameDecodeError, decode_samples
from aetus.server.store._frames_writer import write_frames
from aetus.server.store._keys import Keys, SeriesKey

BoolArray = npt.NDArray[np.bool_]


class InvalidFrame(StoreError):
    """A signal frame whose bytes do not decode; the batch stores nothing."""


@dataclass(frozen=True, slots=True)
class BatchCounts:
    """Events stored and events skipped as duplicates for one batch."""

    accepted: int
    duplicates: int


def plan_types(
    db: duckdb.DuckDBPyConnection, keys: Keys, batch: NormalizedBatch
) -> dict[tuple[str, str], ValueType]:
    """Return the stored value type of every series the batch writes.

    Raises:
        SeriesTypeConflict: A series receives values of another type than it
            has (an int64 into a double series is allowed and converted).
    """
    received: dict[tuple[str, str], list[MetricSeriesPoints]] = {}
    for points in batch.metrics:
        if len(points.time_ns):
            received.setdefault((points.device_id, points.name), []).append(points)

    planned: dict[tuple[str, str], ValueType] = {}
    for (device_id, name), parts in received.items():
        stored = _stored_series(keys, device_id, name)
        target = stored.value_type if stored else _new_series_type(parts)
        for part in parts:
            if not _compatible(target, part.value_type):
                raise SeriesTypeConflict(
                    int(part.event_index[0]), name, target, part.value_type
                )
        planned[(device_id, name)] = target
    return planned


def decode_frames(batch: NormalizedBatch) -> list[npt.NDArray[np.float64]]:
    """Decode every frame of the batch, in order.

    Raises:
        InvalidFrame: A frame's bytes do not match its encoding and size.
    """
    decoded = []
    for frame in batch.frames:
        try:
            decoded.append(_decode(frame))
        except FrameDecodeError as exc:
            raise InvalidFrame(
                f"Signal frame {frame.stream!r} of event {frame.event_index} "
                f"cannot be decoded: {exc}"
            ) from exc
    return decoded


def write_batch(
    db: duckdb.DuckDBPyConnection,
    keys: Keys,
    batch: NormalizedBatch,
    types: dict[tuple[str, str], ValueType],
    decoded: list[npt.NDArray[np.float64]],
) -> BatchCounts:
    """Write a batch that passed plan_types and decode_frames."""
    now = batch.received_time_ns
    device_keys = {
        e.key.device_id: ensure_device(db, keys, e.key.device_id, now)
        for e in batch.events
    }
    first_key, new = _insert_events(db, keys, batch, device_keys)
    event_keys = np.arange(first_key, first_key + len(batch.events), dtype=np.int64)

    _write_points(db, keys, batch, types, new, event_keys)
    frames = [
        (f, d) for f, d in zip(batch.frames, decoded, strict=True) if new[f.event_index]
    ]
    write_frames(db, keys, frames, event_keys, device_keys)
    _write_device_events(db, batch, new, event_keys, device_keys)
    _write_boot_times(db, keys, batch)
    _update_devices(db, batch, new, device_keys)

    accepted = int(new.sum())
    return BatchCounts(accepted, len(batch.events) - accepted)


def ensure_device(
    db: duckdb.DuckDBPyConnection, keys: Keys, device_id: str, now_ns: int
) -> int:
    """Return the key of a device, adding an unregistered row when missing."""
    key = keys.devices.get(device_id)
    if key is None:
        key = keys.allocate("devices")
        db.execute(
            "INSERT INTO devices (device_key, device_id, create_time_ns) "
            "VALUES (?, ?, ?)",
            [key, device_id, now_ns],
        )
        keys.devices.put(device_id, key)
    return key


def ensure_boot(
    db: duckdb.DuckDBPyConnection,
    keys: Keys,
    device_key: int,
    boot_id: str,
    now_ns: int,
) -> int:
    """Return the key of a device's boot, adding it when missing."""
    key = keys.boots.get((device_key, boot_id))
    if key is None:
        key = keys.allocate("boots")
        db.execute(
            "INSERT INTO boots (boot_key, device_key, boot_id, first_seen_time_ns) "
            "VALUES (?, ?, ?, ?)",
            [key, device_key, boot_id, now_ns],
        )
        keys.boots.put((device_key, boot_id), key)
    return key


def _stored_series(keys: Keys, device_id: str, name: str) -> SeriesKey | None:
    device_key = keys.devices.get(device_id)
    if device_key is None:
        return None
    return keys.series.get((device_key, name))


def _new_series_type(parts: list[MetricSeriesPoints]) -> ValueType:
    received = {part.value_type for part in parts}
    if received == {ValueType.DOUBLE, ValueType.INT64}:
        return ValueType.DOUBLE
    return parts[0].value_type


def _compatible(stored: ValueType, received: ValueType) -> bool:
    return received == stored or (
        stored == ValueType.DOUBLE and received == ValueType.INT64
    )


def _decode(frame: FrameRecord) -> npt.NDArray[np.float64]:
    return decode_samples(
        frame.samples,
        frame.encoding,
        frame.layout,
        frame.sample_count,
        frame.channels,
    )


def _insert_events(
    db: duckdb.DuckDBPyConnection,
    keys: Keys,
    batch: NormalizedBatch,
    device_keys: dict[str, int],
) -> tuple[int, BoolArray]:
    """Insert the batch's events; return the first event key and a new-mask.

    Event i gets key first + i. An event whose identity is already stored, or
    appeared earlier in the same batch, is left out and marked not new.
    """
    count = len(batch.events)
    first = keys.allocate("events", count)
    seen: set[tuple[str, str, int]] = set()
    rows: list[int] = []
    boots: list[int] = []
    for index, event in enumerate(batch.events):
        identity = (event.key.device_id, event.key.boot_id, event.key.sequence)
        if identity in seen:
            continue
        seen.add(identity)
        device_key = device_keys[event.key.device_id]
        rows.append(index)
        boots.append(
            ensure_boot(db, keys, device_key, event.key.boot_id, batch.received_time_ns)
        )

    new = np.zeros(count, dtype=np.bool_)
    if not rows:
        return first, new
    picked = [batch.events[i] for i in rows]
    event_frame = {  # noqa: F841  # read by DuckDB's replacement scan
        "event_key": np.array(rows, dtype=np.int64) + first,
        "device_key": np.array(
            [device_keys[e.key.device_id] for e in picked], dtype=np.int32
        ),
        "boot_key": np.array(boots, dtype=np.int32),
        "sequence": np.array([e.key.sequence for e in picked], dtype=np.uint64),
        "kind": np.array([int(e.kind) for e in picked], dtype=np.int8),
        "time_ns": np.array([e.time_ns for e in picked], dtype=np.int64),
        "time_source": np.array([e.time_source for e in picked], dtype=np.int8),
        "uptime_ms": np.array([e.uptime_ms for e in picked], dtype=np.uint64),
        "firmware_version": np.array(
            [e.firmware_version for e in picked], dtype=np.uint32
        ),
        "payload": _object_array(e.payload for e in picked),
    }
    inserted = db.execute(
        "INSERT INTO events SELECT event_key, device_key, boot_key, sequence, "
        "kind, time_ns, time_source, uptime_ms, firmware_version, "
        f"{int(batch.received_time_ns)}, payload FROM event_frame "
        "ON CONFLICT DO NOTHING RETURNING event_key"
    ).fetchnumpy()["event_key"]
    new[np.asarray(inserted, dtype=np.int64) - first] = True
    return first, new


def _object_array(items: Iterable[object]) -> npt.NDArray[np.object_]:
    values = list(items)
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def _write_points(
    db: duckdb.DuckDBPyConnection,
    keys: Keys,
    batch: NormalizedBatch,
    types: dict[tuple[str, str], ValueType],
    new: BoolArray,
    event_keys: npt.NDArray[np.int64],
) -> None:
    """Insert the points of new events, one INSERT per value column."""
    columns: dict[str, list[dict[str, npt.NDArray[np.generic]]]] = {}
    totals: dict[int, _SeriesTotals] = {}
    for points in batch.metrics:
        keep = new[points.event_index] if len(points.event_index) else None
        if keep is None or not keep.any():
            continue
        target = types[(points.device_id, points.name)]
        series_key = _ensure_series(
            db, keys, points, target, keep, batch.received_time_ns, totals
        )
        part = _point_columns(points, target, keep, event_keys)
        part["series_key"] = np.full(int(keep.sum()), series_key, dtype=np.int32)
        columns.setdefault(_value_column(target), []).append(part)

    for column, parts in columns.items():
        _insert_point_parts(db, column, parts)
    _update_series_totals(db, totals)


def _value_column(value_type: ValueType) -> str:
    if value_type == ValueType.DOUBLE:
        return "value_double"
    if value_type == ValueType.STRING:
        return "value_string"
    return "value_int"


def _point_columns(
    points: MetricSeriesPoints,
    target: ValueType,
    keep: BoolArray,
    event_keys: npt.NDArray[np.int64],
) -> dict[str, npt.NDArray[np.generic]]:
    if target == ValueType.STRING:
        values: npt.NDArray[np.generic] = _object_array(
            value for value, kept in zip(points.values, keep, strict=True) if kept
        )
    elif target == ValueType.DOUBLE:
        values = np.asarray(points.values, dtype=np.float64)[keep]
    else:
        values = np.asarray(points.values, dtype=np.int64)[keep]
    return {
        "time_ns": np.asarray(points.time_ns, dtype=np.int64)[keep],
        "event_key": event_keys[points.event_index[keep]],
        "value": values,
    }


def _insert_point_parts(
    db: duckdb.DuckDBPyConnection,
    column: str,
    parts: list[dict[str, npt.NDArray[np.generic]]],
) -> None:
    point_frame = {  # read by DuckDB's replacement scan
        name: np.concatenate([part[name] for part in parts])
        for name in ("series_key", "time_ns", "event_key", "value")
    }
    value = "value"
    if column == "value_double":
        # DuckDB's numpy scan reads NaN as NULL; the flag restores it.
        point_frame["is_nan"] = np.isnan(point_frame["value"].astype(np.float64))
        value = "CASE WHEN is_nan THEN 'NaN'::DOUBLE ELSE value END"
    db.execute(
        f"INSERT INTO points (series_key, time_ns, event_key, {column}) "
        f"SELECT series_key, time_ns, event_key, {value} FROM point_frame"
    )


@dataclass(slots=True)
class _SeriesTotals:
    """Time range, point count and unit that one batch adds to a stored series."""

    first_time_ns: int
    last_time_ns: int
    count: int
    unit: str

    def add(self, first_time_ns: int, last_time_ns: int, count: int, unit: str) -> None:
        self.first_time_ns = min(self.first_time_ns, first_time_ns)
        self.last_time_ns = max(self.last_time_ns, last_time_ns)
        self.count += count
        self.unit = unit or self.unit


def _ensure_series(
    db: duckdb.DuckDBPyConnection,
    keys: Keys,
    points: MetricSeriesPoints,
    target: ValueType,
    keep: BoolArray,
    now_ns: int,
    totals: dict[int, _SeriesTotals],
) -> int:
    """Return the series key, creating the series or adding to ``totals``."""
    device_key = ensure_device(db, keys, points.device_id, now_ns)
    times = np.asarray(points.time_ns, dtype=np.int64)[keep]
    first, last, count = int(times.min()), int(times.max()), int(times.size)
    stored = keys.series.get((device_key, points.name))
    if stored is not None:
        known = totals.get(stored.key)
        if known is None:
            totals[stored.key] = _SeriesTotals(first, last, count, points.unit)
        else:
            known.add(first, last, count, points.unit)
        return stored.key

    key = keys.allocate("series")
    db.execute(
        "INSERT INTO series VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [key, device_key, points.name, points.unit, int(target), first, last, count],
    )
    keys.series.put((device_key, points.name), SeriesKey(key, target))
    return key


def _update_series_totals(
    db: duckdb.DuckDBPyConnection, totals: dict[int, _SeriesTotals]
) -> None:
    """Add a batch's totals to its stored series with one UPDATE statement.

    Each DuckDB statement has a fixed cost of about a millisecond, so one
    statement for all series of a batch, in place of one per series, keeps
    small batches cheap.
    """
    if not totals:
        return
    series_totals = {  # noqa: F841  # read by DuckDB's replacement scan
        "series_key": np.fromiter(totals, dtype=np.int32, count=len(totals)),
        "first_time_ns": np.array(
            [t.first_time_ns for t in totals.values()], dtype=np.int64
        ),
        "last_time_ns": np.array(
            [t.last_time_ns for t in totals.values()], dtype=np.int64
        ),
        "count": np.array([t.count for t in totals.values()], dtype=np.int64),
        "unit": _object_array(t.unit for t in totals.values()),
    }
    db.execute(
        "UPDATE series SET "
        "first_time_ns = least(series.first_time_ns, t.first_time_ns), "
        "last_time_ns = greatest(series.last_time_ns, t.last_time_ns), "
        "point_count = series.point_count + t.count, "
        "unit = CASE WHEN t.unit = '' THEN series.unit ELSE t.unit END "
        "FROM series_totals AS t WHERE series.series_key = t.series_key"
    )


def _write_device_events(
    db: duckdb.DuckDBPyConnection,
    batch: NormalizedBatch,
    new: BoolArray,
    event_keys: npt.NDArray[np.int64],
    device_keys: dict[str, int],
) -> None:
    rows = [
        [
            int(event_keys[item.event_index]),
            device_keys[item.device_id],
            int(item.kind),
            item.time_ns,
            item.body,
        ]
        for item in batch.device_events
        if new[item.event_index]
    ]
    if rows:
        db.executemany("INSERT INTO device_events VALUES (?, ?, ?, ?, ?)", rows)


def _write_boot_times(
    db: duckdb.DuckDBPyConnection, keys: Keys, batch: NormalizedBatch
) -> None:
    """Keep the smallest boot start estimate seen for each boot."""
    now = batch.received_time_ns
    for (device_id, boot_id), estimate in batch.boot_times_ns.items():
        device_key = ensure_device(db, keys, device_id, now)
        boot_key = ensure_boot(db, keys, device_key, boot_id, now)
        db.execute(
            "UPDATE boots SET boot_time_ns = least(coalesce(boot_time_ns, ?), ?) "
            "WHERE boot_key = ?",
            [estimate, estimate, boot_key],
        )


def _update_devices(
    db: duckdb.DuckDBPyConnection,
    batch: NormalizedBatch,
    new: BoolArray,
    device_keys: dict[str, int],
) -> None:
    """Record last-seen time, last boot and the count of stored events."""
    counts: dict[str, int] = {}
    last_boot: dict[str, str] = {}
    for index, event in enumerate(batch.events):
        device_id = event.key.device_id
        counts[device_id] = counts.get(device_id, 0) + int(new[index])
        last_boot[device_id] = event.key.boot_id
    for device_id, count in counts.items():
        db.execute(
            "UPDATE devices SET event_count = event_count + ?, "
            "last_seen_time_ns = greatest(coalesce(last_seen_time_ns, ?), ?), "
            "last_boot_id = ? WHERE device_key = ?",
            [
                count,
                batch.received_time_ns,
                batch.received_time_ns,
                last_boot[device_id],
                device_keys[device_id],
            ],
        )
