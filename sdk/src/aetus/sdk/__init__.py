"""AETUS Python client: batches, bidi streams with acks, numpy signal frames."""

from importlib import metadata as _metadata

from aetus.sdk import stubs
from aetus.sdk._client import (
    AsyncClient,
    ClientOptions,
    IngestResult,
    ServerTime,
)
from aetus.sdk._config import (
    DEFAULT_MAX_MESSAGE_BYTES,
    ENVIRONMENT,
    KEEPALIVE_OPTIONS,
    ClientSettings,
)
from aetus.sdk._errors import (
    AetusError,
    AuthenticationError,
    DeadlineExceededError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    ServerError,
    StreamClosedError,
    UnavailableError,
    error_from_rpc_error,
    error_from_status,
)
from aetus.sdk._events import (
    build_alert,
    build_metric_columns,
    build_metrics,
    build_status,
    metric,
)
from aetus.sdk._frames import (
    ENCODING_BY_DTYPE,
    Channel,
    DowncastWarning,
    build_signal_frames,
    infer_encoding,
)
from aetus.sdk._identity import DeviceIdentity, new_boot_id
from aetus.sdk._read import EnvelopeSeries, Series, StreamData
from aetus.sdk._retry import Backoff
from aetus.sdk._stream import EventStream
from aetus.sdk._stream_results import BatchRejected, StreamResult
from aetus.sdk._sync import Client, SyncEventStream

try:
    __version__ = _metadata.version("aetus-sdk")
except _metadata.PackageNotFoundError:  # Running from a source tree without install.
    __version__ = "0.0.0"

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "ENCODING_BY_DTYPE",
    "ENVIRONMENT",
    "KEEPALIVE_OPTIONS",
    "AetusError",
    "AsyncClient",
    "AuthenticationError",
    "Backoff",
    "BatchRejected",
    "Channel",
    "Client",
    "ClientOptions",
    "ClientSettings",
    "DeadlineExceededError",
    "DeviceIdentity",
    "DowncastWarning",
    "EnvelopeSeries",
    "EventStream",
    "IngestResult",
    "InvalidArgumentError",
    "NotFoundError",
    "PermissionDeniedError",
    "ResourceExhaustedError",
    "Series",
    "ServerError",
    "ServerTime",
    "StreamClosedError",
    "StreamData",
    "StreamResult",
    "SyncEventStream",
    "UnavailableError",
    "__version__",
    "build_alert",
    "build_metric_columns",
    "build_metrics",
    "build_signal_frames",
    "build_status",
    "error_from_rpc_error",
    "error_from_status",
    "infer_encoding",
    "metric",
    "new_boot_id",
    "stubs",
]
