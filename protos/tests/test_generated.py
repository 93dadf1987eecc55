"""Checks that the generated code matches the .proto files."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_generated_code_is_current() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "protos" / "generate.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_generated_stubs_import() -> None:
    from aetus.device.v1 import device_service_pb2_grpc
    from aetus.ingest.v1 import ingest_service_pb2, ingest_service_pb2_grpc
    from aetus.query.v1 import query_service_pb2_grpc
    from aetus.telemetry.v1 import telemetry_pb2

    event = telemetry_pb2.Event(device_id="dev-01", boot_id="boot-1")
    request = ingest_service_pb2.IngestEventsRequest(events=[event])
    assert request.events[0].device_id == "dev-01"
    assert hasattr(ingest_service_pb2_grpc, "IngestServiceStub")
    assert hasattr(device_service_pb2_grpc, "DeviceServiceStub")
    assert hasattr(query_service_pb2_grpc, "QueryServiceStub")
