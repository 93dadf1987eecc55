"""The public surface of aetus.sdk: a sorted, complete __all__ and the stubs."""

import types

import aetus.sdk
from aetus.device.v1 import device_service_pb2_grpc
from aetus.ingest.v1 import ingest_service_pb2, ingest_service_pb2_grpc
from aetus.query.v1 import query_service_pb2_grpc
from aetus.sdk import stubs
from aetus.telemetry.v1 import telemetry_pb2


def _public_names(module: types.ModuleType) -> set[str]:
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }


def _isort_key(name: str) -> tuple[int, str]:
    # Constants, then classes, then functions and modules, as ruff sorts them.
    if name.isupper():
        return (0, name)
    if name[0].isupper():
        return (1, name)
    return (2, name)


def test_all_is_sorted() -> None:
    assert aetus.sdk.__all__ == sorted(aetus.sdk.__all__, key=_isort_key)


def test_all_is_complete() -> None:
    exported = set(aetus.sdk.__all__)
    public = _public_names(aetus.sdk) | {"__version__", "stubs"}

    assert public - exported == set()
    assert exported - public == set()


def test_all_names_resolve() -> None:
    for name in aetus.sdk.__all__:
        assert hasattr(aetus.sdk, name), name


def test_stubs_are_the_generated_modules() -> None:
    assert stubs.ingest_service_pb2 is ingest_service_pb2
    assert stubs.ingest_service_pb2_grpc is ingest_service_pb2_grpc
    assert stubs.IngestServiceStub is ingest_service_pb2_grpc.IngestServiceStub
    assert stubs.QueryServiceStub is query_service_pb2_grpc.QueryServiceStub
    assert stubs.DeviceServiceStub is device_service_pb2_grpc.DeviceServiceStub
    assert stubs.Event is telemetry_pb2.Event


def test_stubs_all_is_sorted_and_complete() -> None:
    names = set(vars(stubs)) - {"annotations"}
    public = {name for name in names if not name.startswith("_")}

    assert stubs.__all__ == sorted(stubs.__all__)
    assert set(stubs.__all__) == public
