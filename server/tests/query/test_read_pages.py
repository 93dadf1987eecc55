"""Raw pages: the same range gives the same points and gap markers however read."""

from __future__ import annotations

import base64
import json

import grpc
import numpy as np
import pytest

from aetus.query.v1 import query_service_pb2 as pb
from aetus.server.records import ChannelSpec, ValueType
from aetus.server.store import EmbeddedStore

MS = 1_000_000
S = 1_000_000_000
T0 = 1_714_564_800 * S
XYZ = tuple(ChannelSpec(name, "g", scale=1 / 2048) for name in "xyz")
XY = XYZ[:2]
FRAME_SAMPLES = 50
INTERVAL = 10 * MS

Point = tuple[int, float | None, bool]


def write_sampled(store: EmbeddedStore, build) -> None:
    """Store 60 frames of 50 samples at 100 Hz with gaps of several kinds.

    After frame 17 no data arrives for 1 s and after frame 41 for 5 s.
    Frames 30 to 34 carry only x and y, so z alone has a hole there. Frame
    10 arrives twice, as a resend under another boot would store it.
    """
    rng = np.random.default_rng(7)
    frames = []
    start = T0
    for index in range(60):
        channels = XY if 30 <= index <= 34 else XYZ
        counts = rng.integers(-2000, 2000, size=(FRAME_SAMPLES, len(channels)))
        frames.append(
            (
                start,
                INTERVAL,
                FRAME_SAMPLES,
                2,
                1,
                channels,
                counts.astype("<i2").tobytes(),
            )
        )
        start += FRAME_SAMPLES * INTERVAL
        start += {17: S, 41: 5 * S}.get(index, 0)
    store.write(build.frames("imu", frames))
    store.write(build.frames("imu", [frames[10]], boot_id="boot-2"))


def write_scalar(store: EmbeddedStore, build) -> None:
    """Store 2,000 points at 1 Hz with gaps, irregular steps and missing readings."""
    rng = np.random.default_rng(3)
    steps = rng.choice([1, 1, 1, 2], size=2000).astype(np.int64) * S
    steps[[300, 301, 1200]] = [40 * S, 15 * S, 600 * S]
    times = T0 + np.cumsum(steps)
    batch = build.scalar(
        "level", times, rng.normal(size=2000), ValueType.DOUBLE, points_per_event=100
    )
    missing = np.zeros(2000, dtype=np.bool_)
    missing[[5, 700, 701]] = True
    batch.metrics[0].missing = missing
    store.write(batch)


async def read_all(
    stub, auth, stream: str, max_points: int, channels: list[str]
) -> tuple[dict[str, list[Point]], int]:
    """Page through a whole stream; return each channel's points and the pages."""
    request = pb.ReadStreamRequest(
        device_id="dev-01",
        stream=stream,
        max_points=max_points,
        mode=pb.READ_MODE_RAW,
        channels=channels,
    )
    points: dict[str, list[Point]] = {}
    pages = 0
    while True:
        response = await stub.ReadStream(request, metadata=auth)
        pages += 1
        for series in response.series:
            points.setdefault(series.channel, []).extend(
                (
                    p.time.ToNanoseconds(),
                    p.double_value if p.HasField("double_value") else None,
                    p.gap,
                )
                for p in series.points
            )
        if not response.next_page_token:
            return points, pages
        request.page_token = response.next_page_token


def gap_times(points: list[Point]) -> list[int]:
    return [time for time, _, gap in points if gap]


@pytest.mark.parametrize("max_points", [97, 640, 2500])
@pytest.mark.parametrize(
    "channels", [["x"], ["z"], ["z", "x"], []], ids=["x", "z", "z-x", "all"]
)
async def test_read_pages_sampled_same_markers(
    store, build, stub, auth, max_points: int, channels: list[str]
) -> None:
    write_sampled(store, build)
    reference, _ = await read_all(stub, auth, "imu", 100_000, [])

    points, pages = await read_all(stub, auth, "imu", max_points, channels)

    assert len(reference["x"]) == 60 * FRAME_SAMPLES + FRAME_SAMPLES + 2
    assert len(gap_times(reference["x"])) == 2
    assert len(gap_times(reference["z"])) == 3
    assert pages > 1
    for name in channels or ["x", "y", "z"]:
        assert points[name] == reference[name], name


@pytest.mark.parametrize("max_points", [13, 150, 1999])
async def test_read_pages_scalar_same_markers(
    store, build, stub, auth, max_points: int
) -> None:
    write_scalar(store, build)
    reference, _ = await read_all(stub, auth, "level", 100_000, [])

    points, pages = await read_all(stub, auth, "level", max_points, [])

    values = reference[""]
    assert len(gap_times(values)) == 3
    assert len(values) == 2003
    assert [value for _, value, gap in values if not gap].count(None) == 3
    assert pages == -(-2000 // max_points)
    assert points[""] == values


async def test_read_pages_token_bound_to_channels(store, build, stub, auth) -> None:
    write_sampled(store, build)
    request = pb.ReadStreamRequest(
        device_id="dev-01",
        stream="imu",
        max_points=100,
        mode=pb.READ_MODE_RAW,
        channels=["x"],
    )
    first = await stub.ReadStream(request, metadata=auth)
    assert first.next_page_token
    request.page_token = first.next_page_token
    del request.channels[:]
    request.channels.append("z")

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.ReadStream(request, metadata=auth)

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details().startswith(
        "page_token was issued for a different request"
    )


async def test_read_pages_token_wrong_cursor_rejected(store, build, stub, auth) -> None:
    write_scalar(store, build)
    body = {"v": 2, "k": "read", "d": "dev-01", "s": "level", "ch": [""], "c": [1]}
    token = base64.urlsafe_b64encode(json.dumps(body).encode()).decode()

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.ReadStream(
            pb.ReadStreamRequest(device_id="dev-01", stream="level", page_token=token),
            metadata=auth,
        )

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details().startswith(
        "page_token is not a token this service issued"
    )
