"""Compare SQLite and DuckDB as the embedded telemetry store on the same data.

Each engine runs in its own child process so that its peak RSS is its own. The
workload is what the store does most:

* insert scalar points in batches, each batch one durable transaction, with
  duplicate events (same device, boot and sequence) skipped by their identity;
* read a 1,000,000-point time range and reduce it to 2,000 min/max buckets.

Usage::

    .venv/bin/python bench/store_choice.py [--batches 100] [--batch-points 10000]
    .venv/bin/python bench/store_choice.py --store-reads

The second form measures the chosen store (EmbeddedStore) on a week of 10 Hz
points: write rate, envelope read time and the reading process's peak RSS.

The durability settings are the ones the store would use: SQLite in WAL mode
with ``synchronous=FULL``; DuckDB with its default WAL, which syncs on commit,
and a ``memory_limit``.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

EVENTS_PER_BATCH = 100
BUCKETS = 2_000
REPLAYED_BATCHES = 10
DUCKDB_MEMORY_LIMIT = "128MB"


def make_batch(index: int, points: int) -> dict[str, np.ndarray]:
    """Build batch ``index``: EVENTS_PER_BATCH events sharing ``points`` points."""
    rng = np.random.default_rng(index)
    start = index * points
    times = (np.arange(start, start + points, dtype=np.int64) * 1_000_000) + 10**18
    values = np.sin(np.arange(start, start + points) / 500.0) + rng.normal(
        0, 0.01, points
    )
    values[::997] = np.nan
    values[::1999] = np.inf
    per_event = points // EVENTS_PER_BATCH
    sequences = np.arange(
        index * EVENTS_PER_BATCH, (index + 1) * EVENTS_PER_BATCH, dtype=np.int64
    )
    return {
        "sequence": sequences,
        "point_event": np.repeat(sequences, per_event),
        "time_ns": times,
        "value": values,
    }


class SqliteEngine:
    """SQLite, WAL, synchronous=FULL; NaN kept as NULL plus a flag column."""

    def __init__(self, path: Path) -> None:
        import sqlite3

        self.db = sqlite3.connect(path / "bench.sqlite", isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(
            """
            CREATE TABLE events (device INTEGER, boot INTEGER, sequence INTEGER,
                PRIMARY KEY (device, boot, sequence)) WITHOUT ROWID;
            CREATE TABLE points (series INTEGER, time_ns INTEGER, sequence INTEGER,
                value REAL, is_nan INTEGER,
                PRIMARY KEY (series, time_ns, sequence)) WITHOUT ROWID;
            """
        )

    def write(self, batch: dict[str, np.ndarray]) -> int:
        self.db.execute("BEGIN IMMEDIATE")
        sequences = batch["sequence"].tolist()
        marks = ",".join("?" * len(sequences))
        stored = {
            row[0]
            for row in self.db.execute(
                "SELECT sequence FROM events WHERE device = 1 AND boot = 1 "
                f"AND sequence IN ({marks})",
                sequences,
            )
        }
        new = [s for s in sequences if s not in stored]
        self.db.executemany("INSERT INTO events VALUES (1, 1, ?)", [(s,) for s in new])
        keep = ~np.isin(batch["point_event"], np.array(sorted(stored), dtype=np.int64))
        values = batch["value"][keep]
        nan = np.isnan(values)
        rows = zip(
            batch["time_ns"][keep].tolist(),
            batch["point_event"][keep].tolist(),
            np.where(nan, 0.0, values).tolist(),
            nan.tolist(),
            strict=True,
        )
        self.db.executemany(
            "INSERT INTO points VALUES (1, ?, ?, CASE WHEN ? THEN NULL ELSE ? END, ?)",
            ((t, s, n, v, n) for t, s, v, n in rows),
        )
        self.db.execute("COMMIT")
        return int(keep.sum())

    def read_sql(self, start: int, end: int, width: int) -> list[Any]:
        return self.db.execute(
            "SELECT (time_ns - ?) / ?, count(*), min(value), max(value) "
            "FROM points WHERE series = 1 AND time_ns >= ? AND time_ns < ? "
            "AND value IS NOT NULL AND abs(value) < 1e308 GROUP BY 1 ORDER BY 1",
            (start, width, start, end),
        ).fetchall()

    def read_numpy(self, start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
        rows = self.db.execute(
            "SELECT time_ns, value, is_nan FROM points "
            "WHERE series = 1 AND time_ns >= ? AND time_ns < ? ORDER BY time_ns",
            (start, end),
        ).fetchall()
        table = np.array(
            [(t, np.nan if n else v) for t, v, n in rows],
            dtype=[("t", np.int64), ("v", np.float64)],
        )
        return table["t"], table["v"]


class DuckdbEngine:
    """DuckDB with a memory limit; NaN passed through an explicit CASE."""

    def __init__(self, path: Path) -> None:
        import duckdb

        self.db = duckdb.connect(
            str(path / "bench.duckdb"),
            config={"memory_limit": DUCKDB_MEMORY_LIMIT, "threads": 2},
        )
        self.db.execute(
            """
            CREATE TABLE events (device INTEGER, boot INTEGER, sequence BIGINT,
                PRIMARY KEY (device, boot, sequence));
            CREATE TABLE points (series INTEGER, time_ns BIGINT, sequence BIGINT,
                value DOUBLE);
            """
        )

    def write(self, batch: dict[str, np.ndarray]) -> int:
        self.db.execute("BEGIN")
        event_frame = {"sequence": batch["sequence"]}  # noqa: F841 (scanned by name)
        new = self.db.execute(
            "INSERT INTO events SELECT 1, 1, sequence FROM event_frame "
            "ON CONFLICT DO NOTHING RETURNING sequence"
        ).fetchnumpy()["sequence"]
        keep = np.isin(batch["point_event"], new)
        values = batch["value"][keep]
        point_frame = {  # noqa: F841 (scanned by name)
            "time_ns": batch["time_ns"][keep],
            "sequence": batch["point_event"][keep],
            "value": values,
            "is_nan": np.isnan(values),
        }
        # The numpy scan reads NaN as NULL, so NaN is restored from the flag.
        self.db.execute(
            "INSERT INTO points SELECT 1, time_ns, sequence, "
            "CASE WHEN is_nan THEN 'NaN'::DOUBLE ELSE value END FROM point_frame"
        )
        self.db.execute("COMMIT")
        return int(keep.sum())

    def read_sql(self, start: int, end: int, width: int) -> list[Any]:
        return self.db.execute(
            "SELECT (time_ns - $1) // $2 AS b, count(*), min(value), max(value) "
            "FROM points WHERE series = 1 AND time_ns >= $3 AND time_ns < $4 "
            "AND isfinite(value) GROUP BY b ORDER BY b",
            [start, width, start, end],
        ).fetchall()

    def read_numpy(self, start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
        columns = self.db.execute(
            "SELECT time_ns, value FROM points "
            "WHERE series = 1 AND time_ns >= $1 AND time_ns < $2 ORDER BY time_ns",
            [start, end],
        ).fetchnumpy()
        return np.asarray(columns["time_ns"]), np.asarray(columns["value"])


def bucket_min_max(
    times: np.ndarray, values: np.ndarray, start: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Reduce points to per-bucket nanmin and nanmax with numpy."""
    index = (times - start) // width
    finite = np.isfinite(values)
    mins = np.full(BUCKETS, np.inf)
    maxs = np.full(BUCKETS, -np.inf)
    np.minimum.at(mins, index[finite], values[finite])
    np.maximum.at(maxs, index[finite], values[finite])
    return mins, maxs


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    """Run ``action`` and return its wall time in seconds and its result."""
    begin = time.perf_counter()
    result = action()
    return time.perf_counter() - begin, result


def run_engine(name: str, batches: int, batch_points: int) -> dict[str, Any]:
    """Run the workload on one engine in this process and return the figures."""
    engines = {"sqlite": SqliteEngine, "duckdb": DuckdbEngine}
    data = [make_batch(i, batch_points) for i in range(batches)]
    with tempfile.TemporaryDirectory() as folder:
        engine = engines[name](Path(folder))
        setup_rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        insert_s, stored = timed(lambda: sum(engine.write(b) for b in data))
        replay_s, replayed = timed(
            lambda: sum(engine.write(b) for b in data[:REPLAYED_BATCHES])
        )
        total = batches * batch_points
        start = int(data[0]["time_ns"][0])
        end = int(data[-1]["time_ns"][-1]) + 1
        width = -(-(end - start) // BUCKETS)
        sql_s, sql_rows = timed(lambda: engine.read_sql(start, end, width))
        fetch_s, (times, values) = timed(lambda: engine.read_numpy(start, end))
        reduce_s, _ = timed(lambda: bucket_min_max(times, values, start, width))
        size = sum(f.stat().st_size for f in Path(folder).iterdir())
    return {
        "engine": name,
        "points": total,
        "stored": stored,
        "replayed_stored": replayed,
        "insert_points_per_s": round(total / insert_s),
        "insert_ms_per_batch": round(insert_s / batches * 1000, 2),
        "replay_ms_per_batch": round(replay_s / REPLAYED_BATCHES * 1000, 2),
        "read_sql_buckets_s": round(sql_s, 3),
        "sql_bucket_rows": len(sql_rows),
        "read_numpy_fetch_s": round(fetch_s, 3),
        "read_numpy_reduce_s": round(reduce_s, 3),
        "read_nan_count": int(np.isnan(values).sum()),
        "file_bytes": size,
        "rss_after_setup_mb": round(setup_rss_kib / 1024),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


WEEK_POINTS = 7 * 86_400 * 10  # a week at 10 Hz


def write_week(folder: Path) -> float:
    """Store a week of 10 Hz points through EmbeddedStore; return seconds taken."""
    from aetus.server.records import (
        EventKey,
        EventKind,
        EventRecord,
        MetricSeriesPoints,
        NormalizedBatch,
        ValueType,
    )
    from aetus.server.store import EmbeddedStore

    store = EmbeddedStore(folder)
    chunk, per_event = 504_000, 1_000
    begin = time.perf_counter()
    for first in range(0, WEEK_POINTS, chunk):
        index = np.arange(first, first + chunk)
        times = 10**18 + index.astype(np.int64) * 100_000_000
        events = [
            EventRecord(
                EventKey("bench", "boot", int(first // per_event + i)),
                EventKind.METRIC_COLUMNS,
                int(times[i * per_event]),
                1,
                0,
                0,
                b"",
            )
            for i in range(chunk // per_event)
        ]
        points = MetricSeriesPoints(
            "bench",
            "week",
            "",
            ValueType.DOUBLE,
            (index - first) // per_event,
            times,
            np.sin(index / 1000.0),
        )
        store.write(NormalizedBatch(0, events=events, metrics=[points]))
    elapsed = time.perf_counter() - begin
    store.close()
    return elapsed


def read_week(folder: Path) -> dict[str, Any]:
    """Reduce the stored week to 1,000 buckets and to local days; report figures."""
    from aetus.server import downsample
    from aetus.server.store import EmbeddedStore

    store = EmbeddedStore(folder)
    stream = store.find_stream("bench", "week")
    assert stream is not None
    end = stream.last_time_ns + 1
    equal = downsample.equal_width_edges(stream.first_time_ns, end, 1_000)
    days = downsample.calendar_edges(
        stream.first_time_ns, end, "day", "Europe/Berlin", max_buckets=100
    )
    equal_s, envelope = timed(lambda: store.scalar_envelope(stream, equal))
    days_s, _ = timed(lambda: store.scalar_envelope(stream, days))
    store.close()
    return {
        "points": int(envelope.count.sum()),
        "envelope_1000_buckets_s": round(equal_s, 2),
        "envelope_local_days_s": round(days_s, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def run_store_reads() -> dict[str, Any]:
    """Measure EmbeddedStore on a week of 10 Hz points, reading in a child."""
    with tempfile.TemporaryDirectory() as folder:
        write_s = write_week(Path(folder))
        command = [sys.executable, __file__, "--read-week", folder]
        output = subprocess.run(command, check=True, capture_output=True, text=True)
        report: dict[str, Any] = json.loads(output.stdout)
    report["write_points_per_s"] = round(WEEK_POINTS / write_s)
    return report


def main() -> None:
    """Run both engines in child processes and print a JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--batch-points", type=int, default=10_000)
    parser.add_argument("--engine", choices=["sqlite", "duckdb"])
    parser.add_argument(
        "--store-reads",
        action="store_true",
        help="measure EmbeddedStore on a week of 10 Hz points instead",
    )
    parser.add_argument("--read-week", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.engine:
        print(json.dumps(run_engine(args.engine, args.batches, args.batch_points)))
        return
    if args.read_week:
        print(json.dumps(read_week(Path(args.read_week))))
        return
    if args.store_reads:
        print(json.dumps(run_store_reads(), indent=2))
        return

    report: dict[str, Any] = {
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "cpus": len(__import__("os").sched_getaffinity(0)),
        "python": platform.python_version(),
        "sqlite_version": __import__("sqlite3").sqlite_version,
        "duckdb_version": __import__("duckdb").__version__,
    }
    for engine in ("sqlite", "duckdb"):
        command = [sys.executable, __file__, "--engine", engine]
        command += ["--batches", str(args.batches)]
        command += ["--batch-points", str(args.batch_points)]
        output = subprocess.run(command, check=True, capture_output=True, text=True)
        report[engine] = json.loads(output.stdout)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
