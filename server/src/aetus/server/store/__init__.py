"""Embedded telemetry store: DuckDB tables for telemetry and the device registry."""

from aetus.server.store._codec import FrameDecodeError, decode_samples
from aetus.server.store._reader import (
    SAMPLED,
    SCALAR,
    ChannelInfo,
    DeviceEventRow,
    FrameStats,
    PointPage,
    StoredFrame,
    StreamInfo,
)
from aetus.server.store._registry import UnknownDevice
from aetus.server.store._series_reads import ChannelPage
from aetus.server.store._store import (
    EmbeddedStore,
    StoreClosed,
    StoreFailed,
    StoreOutOfMemory,
)
from aetus.server.store._writer import InvalidFrame

__all__ = [
    "SAMPLED",
    "SCALAR",
    "ChannelInfo",
    "ChannelPage",
    "DeviceEventRow",
    "EmbeddedStore",
    "FrameDecodeError",
    "FrameStats",
    "InvalidFrame",
    "PointPage",
    "StoreClosed",
    "StoreFailed",
    "StoreOutOfMemory",
    "StoredFrame",
    "StreamInfo",
    "UnknownDevice",
    "decode_samples",
]
