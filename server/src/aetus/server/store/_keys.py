"""Integer keys of the dimension tables, cached in memory by the writer.

Only the writer (which holds the store's write lock) creates dimension rows.
Keys created inside an open transaction stay pending until it commits, so a
rollback never leaves the cache pointing at rows that do not exist.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

import duckdb

from aetus.server.records import ChannelSpec, ValueType

K = TypeVar("K")
V = TypeVar("V")

# Tables with a store-assigned integer key, and the key column of each.
KEY_COLUMNS = {
    "devices": "device_key",
    "boots": "boot_key",
    "series": "series_key",
    "signal_streams": "stream_key",
    "channels": "channel_key",
    "frame_layouts": "layout_key",
    "events": "event_key",
    "frames": "frame_key",
}


class _Transactional(Protocol):
    def commit(self) -> None: ...

    def rollback(self) -> None: ...


class KeyCache(Generic[K, V]):
    """A lookup table with a pending layer that a rollback discards."""

    def __init__(self) -> None:
        self._committed: dict[K, V] = {}
        self._pending: dict[K, V] = {}

    def get(self, key: K) -> V | None:
        """Return the cached value, pending entries first."""
        if key in self._pending:
            return self._pending[key]
        return self._committed.get(key)

    def put(self, key: K, value: V, *, pending: bool = True) -> None:
        """Cache a value; ``pending=False`` for rows already committed."""
        if pending:
            self._pending[key] = value
        else:
            self._committed[key] = value

    def commit(self) -> None:
        """Make pending entries permanent."""
        self._committed.update(self._pending)
        self._pending.clear()

    def rollback(self) -> None:
        """Drop pending entries."""
        self._pending.clear()


@dataclass(frozen=True, slots=True)
class SeriesKey:
    """Key and fixed value type of one scalar series."""

    key: int
    value_type: ValueType


LayoutId = tuple[int, int, int, tuple[ChannelSpec, ...]]


@dataclass
class Keys:
    """Key caches and the next free key of each table."""

    devices: KeyCache[str, int] = field(default_factory=KeyCache)
    boots: KeyCache[tuple[int, str], int] = field(default_factory=KeyCache)
    series: KeyCache[tuple[int, str], SeriesKey] = field(default_factory=KeyCache)
    streams: KeyCache[tuple[int, str], int] = field(default_factory=KeyCache)
    channels: KeyCache[tuple[int, str], int] = field(default_factory=KeyCache)
    layouts: KeyCache[LayoutId, int] = field(default_factory=KeyCache)
    next_key: dict[str, int] = field(default_factory=dict)
    _saved_next_key: dict[str, int] = field(default_factory=dict)

    def load_counters(self, db: duckdb.DuckDBPyConnection) -> None:
        """Read the next free key of every keyed table."""
        for table, column in KEY_COLUMNS.items():
            query = f"SELECT coalesce(max({column}), 0) FROM {table}"
            row = db.execute(query).fetchone()
            self.next_key[table] = int(row[0]) + 1 if row else 1
        self._saved_next_key = dict(self.next_key)

    def allocate(self, table: str, count: int = 1) -> int:
        """Reserve ``count`` consecutive keys of ``table``; return the first."""
        first = self.next_key[table]
        self.next_key[table] = first + count
        return first

    def commit(self) -> None:
        """Keep keys created in the committed transaction."""
        for cache in self._caches():
            cache.commit()
        self._saved_next_key = dict(self.next_key)

    def rollback(self) -> None:
        """Forget keys created in the rolled-back transaction."""
        for cache in self._caches():
            cache.rollback()
        self.next_key = dict(self._saved_next_key)

    def _caches(self) -> list[_Transactional]:
        return [
            self.devices,
            self.boots,
            self.series,
            self.streams,
            self.channels,
            self.layouts,
        ]
