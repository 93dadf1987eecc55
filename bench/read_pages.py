"""Measure raw ReadStream pages over a real gRPC server.

The store gets a sampled stream shaped like the fan vibration recording:
4,674 frames of 200 int16 samples of 3 channels at 200 Hz (934,800 samples
per channel), with a 7 s pause after every 50th frame. The script then reads
the whole stream raw, page by page, once for channel x alone and once for all
channels, and reports the time per page and the points per channel. The
points per channel must be equal in both reads, since gap markers do not
depend on paging.

It also times one raw 100,000-point page of a scalar stream at 1 kHz.

Usage::

    .venv/bin/python bench/read_pages.py [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from aetus.query.v1 import query_service_pb2 as pb
from aetus.query.v1 import query_service_pb2_grpc
from aetus.server.records import (
    ChannelSpec,
    EventKey,
    EventKind,
    EventRecord,
    FrameRecord,
    MetricSeriesPoints,
    NormalizedBatch,
    ValueType,
)
from aetus.server.services.query import QueryService
from aetus.server.store import EmbeddedStore

S = 1_000_000_000
MS = 1_000_000
T0 = 1_714_564_800 * S
FRAMES = 4674
FRAME_SAMPLES = 200


class AllowReads:
    """Authorizer that lets every read through; the benchmark has no tokens."""

    async def require_read(self, context: grpc.aio.ServicerContext) -> None:
        return None


def _event(sequence: int, time_ns: int, kind: EventKind) -> EventRecord:
    return EventRecord(
        EventKey("bench", "boot-1", sequence), kind, time_ns, 1, 0, 0, b""
    )


def fill(store: EmbeddedStore) -> None:
    """Store the sampled stream ``imu`` and the scalar stream ``level``."""
    channels = tuple(ChannelSpec(name, "g", 1 / 2048) for name in "xyz")
    rng = np.random.default_rng(1)
    for first in range(0, FRAMES, 500):
        batch = NormalizedBatch(T0)
        for index in range(first, min(first + 500, FRAMES)):
            start = T0 + index * FRAME_SAMPLES * 5 * MS + (index // 50) * 7 * S
            counts = rng.integers(-2000, 2000, size=(FRAME_SAMPLES, 3))
            batch.frames.append(
                FrameRecord(
                    len(batch.events),
                    "bench",
                    "imu",
                    start,
                    5 * MS,
                    FRAME_SAMPLES,
                    2,
                    1,
                    channels,
                    counts.astype("<i2").tobytes(),
                )
            )
            batch.events.append(_event(index, start, EventKind.SIGNAL_FRAME))
        store.write(batch)
    times = T0 + np.arange(300_000, dtype=np.int64) * MS
    level = NormalizedBatch(T0, events=[_event(10**6, T0, EventKind.METRIC_COLUMNS)])
    level.metrics.append(
        MetricSeriesPoints(
            "bench",
            "level",
            "",
            ValueType.DOUBLE,
            np.zeros(len(times), dtype=np.int64),
            times,
            np.cos(np.arange(300_000.0)),
        )
    )
    store.write(level)


async def read_all(
    stub: query_service_pb2_grpc.QueryServiceStub, channels: list[str]
) -> tuple[float, int, dict[str, int]]:
    """Read ``imu`` raw from start to end; return seconds, pages and points."""
    request = pb.ReadStreamRequest(
        device_id="bench",
        stream="imu",
        max_points=100_000,
        mode=pb.READ_MODE_RAW,
        channels=channels,
    )
    points: dict[str, int] = {}
    pages = 0
    started = time.perf_counter()
    while True:
        response = await stub.ReadStream(request)
        pages += 1
        for series in response.series:
            points[series.channel] = points.get(series.channel, 0) + len(series.points)
        if not response.next_page_token:
            return time.perf_counter() - started, pages, points
        request.page_token = response.next_page_token


async def scalar_page(stub: query_service_pb2_grpc.QueryServiceStub) -> float:
    """Return the seconds for one 100,000-point raw page of ``level``."""
    request = pb.ReadStreamRequest(
        device_id="bench", stream="level", max_points=100_000, mode=pb.READ_MODE_RAW
    )
    started = time.perf_counter()
    response = await stub.ReadStream(request)
    elapsed = time.perf_counter() - started
    assert len(response.series[0].points) == 100_000
    return elapsed


async def measure(store: EmbeddedStore) -> dict[str, Any]:
    server = grpc.aio.server()
    query_service_pb2_grpc.add_QueryServiceServicer_to_server(
        QueryService(store, AllowReads()), server
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = query_service_pb2_grpc.QueryServiceStub(channel)
            alone = await read_all(stub, ["x"])
            every = await read_all(stub, [])
            scalar_s = await scalar_page(stub)
    finally:
        await server.stop(None)
    return {
        "x_alone_s": alone[0],
        "x_alone_s_per_page": alone[0] / alone[1],
        "all_channels_s": every[0],
        "all_channels_s_per_page": every[0] / every[1],
        "x_points_alone": alone[2]["x"],
        "x_points_with_all": every[2]["x"],
        "scalar_page_s": scalar_s,
    }


def main() -> None:
    """Fill a store once, measure several times and print medians as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="repetitions")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        store = EmbeddedStore(Path(folder))
        try:
            fill(store)
            runs = [asyncio.run(measure(store)) for _ in range(args.runs)]
        finally:
            store.close()
    medians = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    print(json.dumps({"runs": args.runs, "median": medians}, indent=2))


if __name__ == "__main__":
    main()
