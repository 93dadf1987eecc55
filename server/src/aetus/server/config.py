"""Server settings: keyword argument, then AETUS_* environment variable, then default.

Every environment variable the server reads is listed in ``ENVIRONMENT``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

# Environment variable for each setting, with its meaning and unit.
ENVIRONMENT: dict[str, str] = {
    "data_dir": "AETUS_DATA_DIR",
    "grpc_address": "AETUS_GRPC_ADDRESS",
    "http_address": "AETUS_HTTP_ADDRESS",
    "envoy_admin_address": "AETUS_ENVOY_ADMIN_ADDRESS",
    "admin_token": "AETUS_ADMIN_TOKEN",
    "read_token": "AETUS_READ_TOKEN",
    "max_request_bytes": "AETUS_MAX_REQUEST_BYTES",
    "max_grpc_message_bytes": "AETUS_MAX_GRPC_MESSAGE_BYTES",
    "max_events_per_batch": "AETUS_MAX_EVENTS_PER_BATCH",
    "max_future_time_s": "AETUS_MAX_FUTURE_TIME_S",
    "stream_read_ahead_batches": "AETUS_STREAM_READ_AHEAD_BATCHES",
    "shutdown_grace_s": "AETUS_SHUTDOWN_GRACE_S",
}


@dataclass(frozen=True)
class Settings:
    """Settings of one server process.

    Attributes:
        data_dir: Folder for the embedded store and generated credentials.
        grpc_address: host:port the gRPC server listens on.
        http_address: host:port of the Envoy front door (HTTP/JSON, protobuf
            posts and gRPC).
        envoy_admin_address: host:port of Envoy's admin interface. Keep it on
            loopback.
        admin_token: Admin credential. Empty means: generate one on first start
            and keep it in ``data_dir/admin-token``.
        read_token: Credential for query calls. Empty means only the admin
            token can read.
        max_request_bytes: Largest HTTP request body, in bytes, that Envoy and
            the HTTP ingest path accept.
        max_grpc_message_bytes: Largest gRPC message, in bytes, the server
            receives.
        max_events_per_batch: Maximum events in one ingest request or stream batch.
        max_future_time_s: Maximum time, in seconds, by which a synchronised
            event time may lie ahead of the server clock.
        stream_read_ahead_batches: Batches of one ingest stream that the
            server reads before earlier ones are durable. Past that, gRPC flow
            control slows the client down.
        shutdown_grace_s: Seconds that running calls get to finish at
            shutdown before they are cancelled.
    """

    data_dir: Path = Path("data")
    grpc_address: str = "127.0.0.1:50051"
    http_address: str = "127.0.0.1:8080"
    envoy_admin_address: str = "127.0.0.1:9901"
    admin_token: str = ""
    read_token: str = ""
    max_request_bytes: int = 1_048_576
    max_grpc_message_bytes: int = 16 * 1_048_576
    max_events_per_batch: int = 50_000
    max_future_time_s: int = 300
    stream_read_ahead_batches: int = 8
    shutdown_grace_s: int = 10

    @classmethod
    def load(
        cls, environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> Settings:
        """Build settings from keyword overrides, then the environment, then defaults.

        Raises:
            ValueError: An environment variable contains a value of the wrong type.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for item in fields(cls):
            if overrides.get(item.name) is not None:
                values[item.name] = overrides[item.name]
                continue
            variable = ENVIRONMENT[item.name]
            raw = env.get(variable)
            if raw is None or raw == "":
                continue
            values[item.name] = _convert(variable, raw, item.default)
        return cls(**values)


def _convert(variable: str, raw: str, default: object) -> object:
    if isinstance(default, Path):
        return Path(raw)
    if isinstance(default, bool):
        lowered = raw.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        raise ValueError(f"{variable}={raw!r} is not a boolean; use true or false")
    if isinstance(default, int):
        try:
            return int(raw)
        except ValueError:
            raise ValueError(
                f"{variable}={raw!r} is not an integer; set a whole number"
            ) from None
    return raw
