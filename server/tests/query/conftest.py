"""Fixtures for QueryService tests: a store, a real gRPC server and a stub."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import ModuleType

import grpc
import pytest

from aetus.query.v1 import query_service_pb2_grpc
from aetus.server.services.query import QueryService
from aetus.server.store import EmbeddedStore

READ_TOKEN = "read-token-for-tests"
REPO_ROOT = Path(__file__).resolve().parents[3]


def _load_store_builders() -> ModuleType:
    """Load the batch builders that the store tests define next door."""
    path = Path(__file__).resolve().parents[1] / "store" / "conftest.py"
    spec = importlib.util.spec_from_file_location("store_batch_builders", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_BUILDERS = _load_store_builders()


class FixedTokenAuthorizer:
    """Authorizer for tests: reads need ``Bearer <READ_TOKEN>``."""

    async def require_read(self, context: grpc.aio.ServicerContext) -> None:
        metadata = dict(context.invocation_metadata() or ())
        if metadata.get("authorization") != f"Bearer {READ_TOKEN}":
            await context.abort(
                grpc.StatusCode.UNAUTHENTICATED, "A read credential is required"
            )

    async def require_admin(self, context: grpc.aio.ServicerContext) -> None:
        await self.require_read(context)

    async def require_device(self, context: grpc.aio.ServicerContext) -> str:
        await context.abort(grpc.StatusCode.PERMISSION_DENIED, "No device calls")
        raise AssertionError("abort returned")


@pytest.fixture
def build() -> object:
    """Batch builders shared with the store tests."""
    return _BUILDERS.Builders()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EmbeddedStore]:
    """An open store in a temporary folder."""
    opened = EmbeddedStore(tmp_path / "data")
    yield opened
    opened.close()


@pytest.fixture
async def stub(
    store: EmbeddedStore,
) -> AsyncIterator[query_service_pb2_grpc.QueryServiceStub]:
    """A QueryService stub connected to a real server on 127.0.0.1."""
    server = grpc.aio.server()
    query_service_pb2_grpc.add_QueryServiceServicer_to_server(
        QueryService(store, FixedTokenAuthorizer()), server
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield query_service_pb2_grpc.QueryServiceStub(channel)
    finally:
        await channel.close()
        await server.stop(grace=None)


@pytest.fixture
def auth() -> list[tuple[str, str]]:
    """Call metadata carrying the read credential."""
    return [("authorization", f"Bearer {READ_TOKEN}")]


@pytest.fixture
def data_dir() -> Path:
    """The recordings folder named by AETUS_TEST_DATA_DIR, or skip."""
    configured = os.environ.get("AETUS_TEST_DATA_DIR")
    folder = Path(configured) if configured else REPO_ROOT.parent / "shared" / "data"
    if not folder.is_dir():
        pytest.skip(f"recordings folder {folder} is absent; set AETUS_TEST_DATA_DIR")
    return folder
