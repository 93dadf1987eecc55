"""Measure EmbeddedStore.write_many on groups of small batches.

Group commit hands the store many small batches at once: concurrent devices
that each post a few points. This script builds such groups as normalised
batches (no server, no parsing) and times one ``write_many`` call per group,
each one transaction and one disk sync, in a fresh store per run.

Workloads:

* ``devices``: 16 devices, each batch one event with 10 metric points of two
  series, as 16 devices posting 10 points each would send.
* ``single``: single-event batches of one point each, from 8 devices.
* ``replay``: the ``single`` groups written a second time, so every event is
  a duplicate.

Usage::

    .venv/bin/python bench/store_groups.py [--runs 5] [--groups 20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from aetus.server.records import (
    EventKey,
    EventKind,
    EventRecord,
    MetricSeriesPoints,
    NormalizedBatch,
    ValueType,
)
from aetus.server.store import EmbeddedStore

T0 = 1_714_564_800 * 1_000_000_000
MS = 1_000_000


def small_batch(device: int, sequence: int, points: int) -> NormalizedBatch:
    """Build one batch of one event carrying ``points`` points of two series."""
    device_id = f"bench-{device:02d}"
    time_ns = T0 + sequence * 1000 * MS
    event = EventRecord(
        key=EventKey(device_id, "boot-1", sequence),
        kind=EventKind.METRICS,
        time_ns=time_ns,
        time_source=1,
        uptime_ms=0,
        firmware_version=0,
        payload=bytes(40 + 12 * points),
    )
    batch = NormalizedBatch(time_ns + 5 * MS, events=[event])
    half = max(1, points // 2)
    for name, count in (("temp", half), ("rh", points - half)):
        if count == 0:
            continue
        batch.metrics.append(
            MetricSeriesPoints(
                device_id,
                name,
                "u",
                ValueType.DOUBLE,
                np.zeros(count, dtype=np.int64),
                time_ns + np.arange(count, dtype=np.int64) * MS,
                np.linspace(0.0, 1.0, count),
            )
        )
    return batch


def make_groups(
    groups: int, batches: int, devices: int, points: int
) -> list[list[NormalizedBatch]]:
    """Build ``groups`` groups of ``batches`` batches, devices in turn."""
    result = []
    for group in range(groups):
        result.append(
            [
                small_batch(index % devices, group * batches + index, points)
                for index in range(batches)
            ]
        )
    return result


def time_groups(store: EmbeddedStore, groups: list[list[NormalizedBatch]]) -> float:
    """Write each group with one write_many call; return the median seconds."""
    durations = []
    for group in groups:
        started = time.perf_counter()
        results = store.write_many(group)
        durations.append(time.perf_counter() - started)
        failed = [result for result in results if isinstance(result, Exception)]
        if failed:
            raise RuntimeError(f"write_many rejected a batch: {failed[0]}")
    return statistics.median(durations)


def run_once(groups: int) -> dict[str, float]:
    """Measure every workload in a fresh store; return ms per group and batch."""
    with tempfile.TemporaryDirectory() as folder:
        store = EmbeddedStore(Path(folder))
        try:
            devices = make_groups(groups, 16, 16, 10)
            single = make_groups(groups, 64, 8, 1)
            # A first, untimed group creates the devices, boots and series, so
            # the timed groups measure the steady state.
            store.write_many([small_batch(d, 10**6 + d, 10) for d in range(16)])
            device_s = time_groups(store, devices)
            single_s = time_groups(store, single)
            replay_s = time_groups(store, single)
        finally:
            store.close()
    return {
        "devices_ms_per_group_of_16": device_s * 1e3,
        "devices_batches_per_s": 16 / device_s,
        "single_ms_per_group_of_64": single_s * 1e3,
        "single_ms_per_batch": single_s * 1e3 / 64,
        "replay_ms_per_group_of_64": replay_s * 1e3,
    }


def main() -> None:
    """Run the workloads several times and print the medians as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="fresh stores to measure")
    parser.add_argument("--groups", type=int, default=20, help="groups per workload")
    args = parser.parse_args()

    runs = [run_once(args.groups) for _ in range(args.runs)]
    medians = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    print(json.dumps({"runs": args.runs, "median": medians}, indent=2))


if __name__ == "__main__":
    main()
