"""grpcurl against server reflection: list, describe and call with no proto files."""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from aetus.server.app import RunningServer

GRPCURL = Path(sys.executable).parent / "grpcurl"

pytestmark = pytest.mark.skipif(
    not GRPCURL.exists(), reason=f"grpcurl is not installed at {GRPCURL}"
)


async def _grpcurl(*args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [str(GRPCURL), "-plaintext", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _auth(server: RunningServer) -> tuple[str, str]:
    return ("-H", f"authorization: Bearer {server.admin_token}")


async def test_grpcurl_lists_services(server: RunningServer) -> None:
    result = await _grpcurl(server.address, "list")

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "aetus.device.v1.DeviceService",
        "aetus.ingest.v1.IngestService",
        "aetus.query.v1.QueryService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    ]


@pytest.mark.parametrize(
    ("symbol", "expected"),
    [
        pytest.param(
            "aetus.ingest.v1.IngestService",
            "rpc StreamEvents ( stream .aetus.ingest.v1.StreamEventsRequest ) "
            "returns ( stream .aetus.ingest.v1.StreamEventsResponse );",
            id="ingest-service",
        ),
        pytest.param(
            "aetus.device.v1.DeviceService.ProvisionDevice",
            "rpc ProvisionDevice ( .aetus.device.v1.ProvisionDeviceRequest ) "
            "returns ( .aetus.device.v1.ProvisionDeviceResponse )",
            id="device-method",
        ),
        pytest.param(
            "aetus.telemetry.v1.SignalFrame",
            ".aetus.telemetry.v1.SampleEncoding encoding = 4",
            id="message",
        ),
    ],
)
async def test_grpcurl_describes(
    server: RunningServer, symbol: str, expected: str
) -> None:
    result = await _grpcurl(server.address, "describe", symbol)

    assert result.returncode == 0, result.stderr
    assert expected in result.stdout


async def test_grpcurl_calls_get_time(server: RunningServer) -> None:
    result = await _grpcurl(
        *_auth(server), server.address, "aetus.ingest.v1.IngestService/GetTime"
    )

    assert result.returncode == 0, result.stderr
    reply = json.loads(result.stdout)
    assert reply["valid_after_time"] == "2020-01-01T00:00:00Z"
    assert int(reply["unix_time_ns"]) > 1_577_836_800 * 10**9


async def test_grpcurl_calls_ingest_events(server: RunningServer) -> None:
    request = {
        "events": [
            {
                "deviceId": "dev-01",
                "bootId": "boot-1",
                "sequence": "7",
                "time": "2024-05-01T12:00:00+02:00",
                "metrics": {"metrics": [{"name": "temp", "doubleValue": "NaN"}]},
            }
        ]
    }

    result = await _grpcurl(
        *_auth(server),
        "-d",
        json.dumps(request),
        server.address,
        "aetus.ingest.v1.IngestService/IngestEvents",
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["accepted_count"] == 1
    stream = await asyncio.to_thread(server.store.find_stream, "dev-01", "temp")
    assert stream is not None
    page = await asyncio.to_thread(server.store.read_points, stream, 0, 2**63 - 1)
    assert [int(t) for t in page.time_ns] == [1_714_557_600 * 10**9]
    assert math.isnan(float(page.values[0]))


async def test_grpcurl_shows_rejection(server: RunningServer) -> None:
    request = {"events": [{"deviceId": "dev-01", "bootId": "boot-1"}]}

    result = await _grpcurl(
        *_auth(server),
        "-d",
        json.dumps(request),
        server.address,
        "aetus.ingest.v1.IngestService/IngestEvents",
    )

    assert result.returncode != 0
    assert "Code: InvalidArgument" in result.stderr
    assert (
        "Message: events[0]: body missing; set one of metrics, signal_frame, "
        "status, alert or metric_columns" in result.stderr
    )


async def test_grpcurl_checks_health(server: RunningServer) -> None:
    overall = await _grpcurl(server.address, "grpc.health.v1.Health/Check")
    ingest = await _grpcurl(
        "-d",
        '{"service": "aetus.ingest.v1.IngestService"}',
        server.address,
        "grpc.health.v1.Health/Check",
    )

    assert overall.returncode == 0, overall.stderr
    assert json.loads(overall.stdout) == {"status": "SERVING"}
    assert ingest.returncode == 0, ingest.stderr
    assert json.loads(ingest.stdout) == {"status": "SERVING"}
