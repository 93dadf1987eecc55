"""A raw ReadStream page costs a small multiple of parsing it in protobuf's C code."""

from __future__ import annotations

import time

import numpy as np

from aetus.query.v1 import query_service_pb2 as pb
from aetus.server.records import ValueType

MS = 1_000_000
T0 = 1_714_564_800 * 1_000_000_000
POINTS = 100_000


async def test_read_speed_raw_page_near_parse_cost(store, build, stub, auth) -> None:
    # One 100,000-point raw page over gRPC, timed against parsing and
    # serialising the same response in the client. Both run on this machine
    # at the same time, so the ratio does not depend on its speed.
    times = T0 + np.arange(POINTS + 1, dtype=np.int64) * MS
    values = np.sin(np.arange(POINTS + 1) / 500.0)
    store.write(
        build.scalar("fast", times, values, ValueType.DOUBLE, points_per_event=1000)
    )
    request = pb.ReadStreamRequest(
        device_id="dev-01", stream="fast", max_points=POINTS, mode=pb.READ_MODE_RAW
    )

    reads, copies = [], []
    for _ in range(3):
        started = time.perf_counter()
        response = await stub.ReadStream(request, metadata=auth)
        reads.append(time.perf_counter() - started)
        started = time.perf_counter()
        pb.ReadStreamResponse.FromString(response.SerializeToString())
        copies.append(time.perf_counter() - started)

    assert len(response.series[0].points) == POINTS
    assert response.series[0].points[-1].double_value == values[POINTS - 1]
    # Building points one message at a time took about 35 times the parse
    # and serialise time here, and column-wise encoding about 10 times.
    assert min(reads) < 20 * min(copies), (reads, copies)
