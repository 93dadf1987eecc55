"""Writing the scalar points of one write group, with their series totals."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import duckdb
import numpy as np
import numpy.typing as npt

from aetus.server.records import MetricSeriesPoints, ValueType
from aetus.server.store._dimensions import DimensionRows
from aetus.server.store._keys import SeriesKey

BoolArray = npt.NDArray[np.bool_]
Columns = dict[str, npt.NDArray[np.generic]]


@dataclass(slots=True)
class _SeriesTotals:
    """Time range, point count and unit that one group adds to a series."""

    device_key: int
    name: str
    value_type: ValueType
    first_time_ns: int
    last_time_ns: int
    count: int
    unit: str

    def add(self, first_time_ns: int, last_time_ns: int, count: int, unit: str) -> None:
        self.first_time_ns = min(self.first_time_ns, first_time_ns)
        self.last_time_ns = max(self.last_time_ns, last_time_ns)
        self.count += count
        self.unit = unit or self.unit


class PointRows:
    """The points of one write group, one column list per value column.

    ``add`` queues the points of new events and counts them into their
    series' totals. ``queue_new_series`` hands rows of series created by the
    group to the dimension rows, and ``write`` inserts the points with one
    statement per value column and updates the totals of series that
    already existed with one statement.
    """

    def __init__(self, dimensions: DimensionRows) -> None:
        self._dimensions = dimensions
        self._parts: dict[str, list[Columns]] = {}
        self._totals: dict[int, _SeriesTotals] = {}
        self._new_series: set[int] = set()

    def add(
        self,
        points: MetricSeriesPoints,
        target: ValueType,
        keep: BoolArray,
        event_keys: npt.NDArray[np.int64],
        now_ns: int,
    ) -> None:
        """Queue the points of ``points`` that ``keep`` selects.

        Args:
            points: One series' points of a batch.
            target: The series' stored value type, from the group check.
            keep: One entry per point; True for points of new events.
            event_keys: Event key of each event index of the batch.
            now_ns: Receive time of the batch, for a new device row.
        """
        series_key = self._series_key(points, target, keep, now_ns)
        part = _point_columns(points, target, keep, event_keys)
        part["series_key"] = np.full(int(keep.sum()), series_key, dtype=np.int32)
        self._parts.setdefault(_value_column(target), []).append(part)

    def queue_new_series(self) -> None:
        """Queue a row, with its totals, for every series the group created."""
        for key in sorted(self._new_series):
            totals = self._totals[key]
            self._dimensions.add(
                "series",
                [
                    key,
                    totals.device_key,
                    totals.name,
                    totals.unit,
                    int(totals.value_type),
                    totals.first_time_ns,
                    totals.last_time_ns,
                    totals.count,
                ],
            )

    def write(self, db: duckdb.DuckDBPyConnection) -> None:
        """Insert the queued points and add them to the stored series' totals."""
        for column, parts in self._parts.items():
            _insert_points(db, column, parts)
        _update_series_totals(
            db,
            [t for key, t in self._totals.items() if key not in self._new_series],
            [key for key in self._totals if key not in self._new_series],
        )

    def _series_key(
        self,
        points: MetricSeriesPoints,
        target: ValueType,
        keep: BoolArray,
        now_ns: int,
    ) -> int:
        """Return the series key, creating the series and counting the totals."""
        rows = self._dimensions
        device_key = rows.device(points.device_id, now_ns)
        times = np.asarray(points.time_ns, dtype=np.int64)[keep]
        first, last, count = int(times.min()), int(times.max()), int(times.size)

        stored = rows.keys.series.get((device_key, points.name))
        if stored is None:
            key = rows.keys.allocate("series")
            rows.keys.series.put((device_key, points.name), SeriesKey(key, target))
            self._new_series.add(key)
        else:
            key = stored.key
        known = self._totals.get(key)
        if known is None:
            self._totals[key] = _SeriesTotals(
                device_key, points.name, target, first, last, count, points.unit
            )
        else:
            known.add(first, last, count, points.unit)
        return key


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
) -> Columns:
    count = len(points.time_ns)
    missing = np.zeros(count, np.bool_) if points.missing is None else points.missing
    if missing.all():
        # Only placeholders, possibly of another type than the series has.
        values = _placeholders(target, count)
    elif target == ValueType.STRING:
        values = object_array(points.values)
    elif target == ValueType.DOUBLE:
        values = np.asarray(points.values, dtype=np.float64)
    else:
        values = np.asarray(points.values, dtype=np.int64)
    return {
        "time_ns": np.asarray(points.time_ns, dtype=np.int64)[keep],
        "event_key": event_keys[points.event_index[keep]],
        "value": values[keep],
        "missing": missing[keep],
    }


def _placeholders(value_type: ValueType, count: int) -> npt.NDArray[np.generic]:
    if value_type == ValueType.STRING:
        return object_array([""] * count)
    if value_type == ValueType.DOUBLE:
        return np.full(count, np.nan)
    return np.zeros(count, dtype=np.int64)


def object_array(items: Iterable[object]) -> npt.NDArray[np.object_]:
    """Return a 1-D object array of ``items``, for a VARCHAR or BLOB column."""
    values = list(items)
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def _insert_points(
    db: duckdb.DuckDBPyConnection, column: str, parts: list[Columns]
) -> None:
    point_frame = {  # read by DuckDB's replacement scan
        name: np.concatenate([part[name] for part in parts])
        for name in ("series_key", "time_ns", "event_key", "value", "missing")
    }
    # A missing reading is stored as NULL, whatever its placeholder value.
    value = "CASE WHEN missing THEN NULL ELSE value END"
    if column == "value_double":
        # DuckDB's numpy scan reads NaN as NULL; the flag restores it.
        point_frame["is_nan"] = np.isnan(point_frame["value"].astype(np.float64))
        value = (
            "CASE WHEN missing THEN NULL WHEN is_nan THEN 'NaN'::DOUBLE ELSE value END"
        )
    db.execute(
        f"INSERT INTO points (series_key, time_ns, event_key, {column}) "
        f"SELECT series_key, time_ns, event_key, {value} FROM point_frame"
    )


def _update_series_totals(
    db: duckdb.DuckDBPyConnection, totals: list[_SeriesTotals], keys: list[int]
) -> None:
    """Add a group's totals to series stored before it, in one UPDATE."""
    if not totals:
        return
    series_totals = {  # noqa: F841  # read by DuckDB's replacement scan
        "series_key": np.array(keys, dtype=np.int32),
        "first_time_ns": np.array([t.first_time_ns for t in totals], dtype=np.int64),
        "last_time_ns": np.array([t.last_time_ns for t in totals], dtype=np.int64),
        "count": np.array([t.count for t in totals], dtype=np.int64),
        "unit": object_array(t.unit for t in totals),
    }
    db.execute(
        "UPDATE series SET "
        "first_time_ns = least(series.first_time_ns, t.first_time_ns), "
        "last_time_ns = greatest(series.last_time_ns, t.last_time_ns), "
        "point_count = series.point_count + t.count, "
        "unit = CASE WHEN t.unit = '' THEN series.unit ELSE t.unit END "
        "FROM series_totals AS t WHERE series.series_key = t.series_key"
    )
