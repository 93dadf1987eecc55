"""Client settings: keyword argument, then AETUS_* environment variable, then default.

Every environment variable the SDK reads is listed in ``ENVIRONMENT``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

# Environment variable for each setting. Units are in the setting names.
ENVIRONMENT: dict[str, str] = {
    "target": "AETUS_TARGET",
    "token": "AETUS_TOKEN",
    "http_url": "AETUS_HTTP_URL",
    "timeout_s": "AETUS_TIMEOUT_S",
    "max_attempts": "AETUS_MAX_ATTEMPTS",
    "retry_initial_backoff_ms": "AETUS_RETRY_INITIAL_BACKOFF_MS",
    "retry_max_backoff_ms": "AETUS_RETRY_MAX_BACKOFF_MS",
    "max_message_bytes": "AETUS_MAX_MESSAGE_BYTES",
    "max_receive_message_bytes": "AETUS_MAX_RECEIVE_MESSAGE_BYTES",
    "stream_batch_max_events": "AETUS_STREAM_BATCH_MAX_EVENTS",
    "stream_linger_ms": "AETUS_STREAM_LINGER_MS",
    "stream_max_inflight_batches": "AETUS_STREAM_MAX_INFLIGHT_BATCHES",
    "stream_ack_timeout_s": "AETUS_STREAM_ACK_TIMEOUT_S",
}

# gRPC's own default receive limit. Every gRPC peer and proxy accepts messages
# of this size unless configured lower, so it is the default send limit too.
DEFAULT_MAX_MESSAGE_BYTES = 4 * 1_048_576

# Channel keepalive. The client pings every 10 s, also with no call open, so a
# dead connection is noticed within keepalive_time + keepalive_timeout. The
# server must allow pings this often (grpc.http2.min_ping_interval_without_
# data_ms <= 10000 and grpc.keepalive_permit_without_calls = 1), or it ends
# the connection with GOAWAY too_many_pings.
KEEPALIVE_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
)


def channel_option_list(
    settings: ClientSettings, caller_options: Sequence[tuple[str, Any]]
) -> list[tuple[str, Any]]:
    """Build a channel's gRPC options: the caller's, then the SDK's defaults.

    gRPC core uses the first copy of a repeated key, so the caller's options
    come first, and an SDK default whose key the caller sets is left out.
    """
    defaults = [
        ("grpc.max_send_message_length", settings.max_message_bytes),
        ("grpc.max_receive_message_length", settings.max_receive_message_bytes),
        *KEEPALIVE_OPTIONS,
    ]
    caller_keys = {key for key, _ in caller_options}
    return [
        *caller_options,
        *((key, value) for key, value in defaults if key not in caller_keys),
    ]


@dataclass(frozen=True)
class ClientSettings:
    """Settings of one client.

    Attributes:
        target: host:port of the AETUS gRPC server or of the Envoy front door.
        token: Bearer token sent in the ``authorization`` metadata. Empty
            sends no credential.
        http_url: Base URL of the HTTP front door, for ``send_events_http``.
        timeout_s: Deadline of each attempt of a unary call, in seconds. The
            bidi stream has no deadline.
        max_attempts: Attempts of a unary call, the first included, before a
            retriable error is raised.
        retry_initial_backoff_ms: Backoff before the first retry; it doubles
            per attempt, with jitter.
        retry_max_backoff_ms: Upper bound of one backoff.
        max_message_bytes: Largest request the client sends, in bytes. Stream
            batches are cut to fit, and signal frames are split to fit.
        max_receive_message_bytes: Largest response the client accepts.
        stream_batch_max_events: Maximum events in one stream batch.
        stream_linger_ms: How long a partly filled stream batch waits for more
            events before it is sent.
        stream_max_inflight_batches: Sealed stream batches kept before
            ``send()`` waits for acks. Bounds the memory a stream holds.
        stream_ack_timeout_s: Time without an ack while batches are
            outstanding after which the stream is taken as stalled, cancelled
            and reopened, and the unacked batches are sent again.
    """

    target: str = "127.0.0.1:50051"
    token: str = ""
    http_url: str = "http://127.0.0.1:8080"
    timeout_s: float = 10.0
    max_attempts: int = 5
    retry_initial_backoff_ms: int = 100
    retry_max_backoff_ms: int = 5_000
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    max_receive_message_bytes: int = 64 * 1_048_576
    stream_batch_max_events: int = 500
    stream_linger_ms: int = 50
    stream_max_inflight_batches: int = 8
    stream_ack_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, int | float) and value <= 0:
                raise ValueError(
                    f"{item.name}={value!r} is invalid: it must be greater than 0 "
                    f"(argument {item.name}= or {ENVIRONMENT[item.name]})"
                )
        if self.max_message_bytes < 1024:
            raise ValueError(
                f"max_message_bytes={self.max_message_bytes} is below the minimum "
                "of 1024 bytes; raise it"
            )

    @classmethod
    def load(
        cls, environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> ClientSettings:
        """Build settings from keyword arguments, then the environment, then defaults.

        Args:
            environ: Environment to read; ``os.environ`` when None.
            **overrides: Settings by name. None means "not given".

        Returns:
            The settings.

        Raises:
            TypeError: An override names no setting.
            ValueError: A value is of the wrong type or out of range.
        """
        unknown = sorted(set(overrides) - set(ENVIRONMENT))
        if unknown:
            raise TypeError(
                f"unknown client settings {unknown}; valid names: {sorted(ENVIRONMENT)}"
            )
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for item in fields(cls):
            if overrides.get(item.name) is not None:
                values[item.name] = overrides[item.name]
                continue
            raw = env.get(ENVIRONMENT[item.name], "")
            if raw != "":
                values[item.name] = _convert(ENVIRONMENT[item.name], raw, item.default)
        return cls(**values)


def _convert(variable: str, raw: str, default: object) -> object:
    if isinstance(default, int):
        try:
            return int(raw)
        except ValueError:
            raise ValueError(
                f"{variable}={raw!r} is not an integer; set a whole number"
            ) from None
    if isinstance(default, float):
        try:
            return float(raw)
        except ValueError:
            raise ValueError(f"{variable}={raw!r} is not a number; set one") from None
    return raw


# Bytes a request adds around its events: the batch_sequence field (at most
# 11 bytes) of a stream batch, and the tag and length prefix (at most 6 bytes)
# of each event.
REQUEST_OVERHEAD_BYTES = 16
EVENT_FRAMING_BYTES = 6


def max_event_bytes(max_message_bytes: int) -> int:
    """Return the largest encoded event that fits alone in one request."""
    return max_message_bytes - REQUEST_OVERHEAD_BYTES - EVENT_FRAMING_BYTES
