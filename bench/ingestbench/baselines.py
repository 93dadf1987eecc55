"""Baselines, run in their own worker process: protobuf parsing and direct inserts.

The worker keeps one EmbeddedStore open across repetitions, in a folder of
its own, so it grows with the same data as the server's store. Batches are
normalised before the timer starts; the timed part is ``write_many`` alone,
with the durability the server uses (a commit returns after the WAL sync).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from aetus.ingest.v1 import ingest_service_pb2
from aetus.server.checks import Limits
from aetus.server.normalize import BootClock, Normalizer
from aetus.server.records import NormalizedBatch, StoreError
from aetus.server.store import EmbeddedStore

_store: EmbeddedStore | None = None


def open_store(data_dir: str) -> None:
    """Open the baseline store in ``data_dir`` for the following calls."""
    global _store
    _store = EmbeddedStore(Path(data_dir))


def close_store() -> None:
    """Close the baseline store."""
    global _store
    if _store is not None:
        _store.close()
        _store = None


def _normalize(store: EmbeddedStore, requests: list[bytes]) -> list[NormalizedBatch]:
    normalizer = Normalizer(Limits(), BootClock(store.boot_time_ns))

    async def run() -> list[NormalizedBatch]:
        batches = []
        for data in requests:
            request = ingest_service_pb2.IngestEventsRequest.FromString(data)
            normalized = await normalizer.normalize(request.events, device_id=None)
            batches.append(normalized.batch)
        return batches

    return asyncio.run(run())


def insert(requests: list[bytes], batches_per_commit: int = 1) -> dict[str, Any]:
    """Store the events of ``requests`` with ``EmbeddedStore.write_many``.

    Args:
        requests: Serialised IngestEventsRequest messages.
        batches_per_commit: Batches passed to one ``write_many`` call, and so
            stored by one transaction and one WAL sync.

    Returns:
        ``elapsed_s`` and ``timed_cpu_s`` (CPU time of every thread of this
        process) of the writes alone, ``accepted`` events and ``commits``.

    Raises:
        RuntimeError: ``open_store`` was not called, or the store rejected a
            batch.
    """
    if _store is None:
        raise RuntimeError("open_store() must be called before insert()")
    batches = _normalize(_store, requests)
    groups = [
        batches[start : start + batches_per_commit]
        for start in range(0, len(batches), batches_per_commit)
    ]
    accepted = 0
    cpu_start = time.process_time()
    start = time.perf_counter()
    for group in groups:
        for result in _store.write_many(group):
            if isinstance(result, StoreError):
                raise RuntimeError(f"the baseline store rejected a batch: {result}")
            accepted += result.accepted_count
    elapsed = time.perf_counter() - start
    return {
        "elapsed_s": elapsed,
        "timed_cpu_s": time.process_time() - cpu_start,
        "accepted": accepted,
        "commits": len(groups),
    }


def parse(requests: list[bytes], min_seconds: float) -> dict[str, Any]:
    """Parse ``requests`` with IngestEventsRequest.FromString, in whole passes.

    Passes repeat until ``min_seconds`` have gone by, so short workloads are
    still timed over a measurable span.

    Returns:
        ``elapsed_s`` and ``passes``; each pass parses every request once.
    """
    parse_one = ingest_service_pb2.IngestEventsRequest.FromString
    passes = 0
    start = time.perf_counter()
    while True:
        for data in requests:
            parse_one(data)
        passes += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return {"elapsed_s": elapsed, "passes": passes}
