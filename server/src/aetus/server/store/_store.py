"""The embedded telemetry store: a DuckDB file in the server's data folder.

DuckDB was chosen over SQLite by measurement (bench/store_choice.py, recorded
in BENCHMARKS.md): on 100 batches of 10,000 points it inserted 3.4 times
faster, and it reduced a 1,000,000-point range to 2,000 buckets 39 times
faster in SQL, with a smaller file. It stores NaN and the infinities as IEEE
values. Its cost is a larger resident size, so the connection gets a
``memory_limit`` that keeps the server under 300 MB, and a fixed cost of a
few milliseconds per small transaction. A commit returns after DuckDB has
synced its write-ahead log (one ``fdatasync`` per commit), so it is durable.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import duckdb

from aetus.server import downsample
from aetus.server.records import (
    ChannelSpec,
    DeviceRow,
    Int64Array,
    NormalizedBatch,
    StoreError,
    ValueType,
    WriteResult,
)
from aetus.server.store import _reader, _registry, _series_reads, _writer
from aetus.server.store._dimensions import ensure_device
from aetus.server.store._keys import Keys, SeriesKey
from aetus.server.store._reader import (
    SAMPLED,
    ChannelInfo,
    DeviceEventRow,
    PointPage,
    StoredFrame,
    StreamInfo,
)
from aetus.server.store._schema import SCHEMA_VERSION, TABLES
from aetus.server.store._series_reads import ChannelPage

logger = logging.getLogger(__name__)

DATABASE_FILE = "telemetry.duckdb"
# Failures of one batch's data or of the database while writing it. Each
# fails the batch with a StoreError instead of escaping write_many.
_WRITE_ERRORS = (duckdb.Error, OverflowError, TypeError, ValueError)


class StoreClosed(StoreError):
    """The store was used after close()."""


class StoreFailed(StoreError):
    """DuckDB invalidated the database; only a restart of the server recovers it."""


class StoreOutOfMemory(StoreError):
    """A query needed more memory than DuckDB's memory_limit allows."""

    def __init__(self, limit_mb: int, detail: str) -> None:
        super().__init__(
            f"the query needed more than the store's memory limit of {limit_mb} MiB "
            f"({detail})"
        )
        self.limit_mb = limit_mb


class EmbeddedStore:
    """Telemetry, device registry and read queries in one DuckDB file.

    Implements TelemetryWriter and DeviceRegistry from aetus.server.records.
    Every method is synchronous and thread-safe; async callers run them with
    ``asyncio.to_thread``. Writes are serialised by one lock, and reads run on
    their own cursors, so they see the last committed state.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        memory_limit_mb: int = 48,
        threads: int = 2,
    ) -> None:
        """Open or create the store in ``data_dir``.

        Args:
            data_dir: Folder for the database file; created when missing.
            memory_limit_mb: DuckDB's buffer pool limit, in MiB.
            threads: DuckDB worker threads for queries.
        """
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / DATABASE_FILE
        self.memory_limit_mb = memory_limit_mb
        self._failure: BaseException | None = None
        self._failure_listeners: list[Callable[[BaseException], None]] = []
        self._root = duckdb.connect(
            str(self.path),
            config={
                "memory_limit": f"{memory_limit_mb}MiB",
                "threads": threads,
                "checkpoint_threshold": "4MiB",
            },
        )
        self._write_lock = threading.Lock()
        # Active token hash -> device id, filled by lookups. Every registry write
        # clears it and bumps the generation, so a lookup that raced a write
        # does not store what it read before that write.
        self._token_devices: dict[bytes, str] = {}
        self._token_generation = 0
        self._token_lock = threading.Lock()
        self._cursor_lock = threading.Lock()
        self._failure_lock = threading.Lock()
        self._closed = False
        self._db = self._root.cursor()
        self._create_schema()
        self._keys = Keys()
        self._load_keys()
        logger.info("Opened telemetry store %s", self.path)

    def add_failure_listener(self, listener: Callable[[BaseException], None]) -> None:
        """Register ``listener``, called once by the thread that saw DuckDB fail."""
        self._failure_listeners.append(listener)

    @property
    def failure(self) -> BaseException | None:
        """The error that invalidated the database, or None while it is usable."""
        return self._failure

    def close(self) -> None:
        """Checkpoint and close the database; later calls raise StoreClosed."""
        with self._write_lock, self._cursor_lock:
            if self._closed:
                return
            self._closed = True
            self._db.close()
            self._root.close()
        logger.info("Closed telemetry store %s", self.path)

    # Writes -----------------------------------------------------------------

    def write(self, batch: NormalizedBatch) -> WriteResult:
        """Store one batch.

        Raises:
            StoreError: The batch was rejected; nothing of it is stored.
        """
        result = self.write_many([batch])[0]
        if isinstance(result, StoreError):
            raise result
        return result

    def write_many(
        self, batches: Sequence[NormalizedBatch]
    ) -> list[WriteResult | StoreError]:
        """Store several batches in one transaction and one disk sync.

        Each batch succeeds or fails on its own: a batch that raises a
        StoreError stores nothing, and its error takes its place in the
        result. Events whose key is already stored, or that repeat an earlier
        event of the same call, count as duplicates and their points, frames
        and device events are skipped. When the database itself fails, the
        batches are retried one per transaction, so one bad batch cannot
        take the others down with it.
        """
        if not batches:
            return []
        with self._write_lock:
            self._check_open()
            if len(batches) == 1:
                return [self._write_alone(batches[0])]
            try:
                return self._write_together(batches)
            except _WRITE_ERRORS as exc:
                self._check_invalidated(exc)
                logger.warning(
                    "Writing %d batches in one transaction failed (%s); "
                    "retrying each in its own transaction",
                    len(batches),
                    exc,
                )
            return [self._write_alone(batch) for batch in batches]

    def _write_together(
        self, batches: Sequence[NormalizedBatch]
    ) -> list[WriteResult | StoreError]:
        """Check every batch, then write the accepted ones as one group."""
        checker = _writer.GroupChecker(self._keys)
        outcomes: list[_writer.CheckedBatch | StoreError] = []
        for batch in batches:
            try:
                outcomes.append(checker.check(batch))
            except StoreError as exc:
                outcomes.append(exc)
        group = [item for item in outcomes if not isinstance(item, StoreError)]
        if not group:
            return [item for item in outcomes if isinstance(item, StoreError)]

        with self._transaction():
            counts = iter(_writer.write_group(self._db, self._keys, group))
        commit_ns = time.time_ns()
        results: list[WriteResult | StoreError] = []
        for item in outcomes:
            if isinstance(item, StoreError):
                results.append(item)
            else:
                count = next(counts)
                results.append(WriteResult(count.accepted, count.duplicates, commit_ns))
        return results

    def _write_alone(self, batch: NormalizedBatch) -> WriteResult | StoreError:
        try:
            return self._write_together([batch])[0]
        except _WRITE_ERRORS as exc:
            self._check_invalidated(exc)
            logger.error(
                "Storing a batch of %d events failed: %s", len(batch.events), exc
            )
            return StoreError(f"Storing the batch failed: {exc}")

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """Run a block in a transaction; commit syncs the WAL to disk."""
        self._db.execute("BEGIN TRANSACTION")
        try:
            yield
            self._db.execute("COMMIT")
        except BaseException as exc:
            if isinstance(exc, duckdb.Error):
                self._note_invalidated(exc)
            self._rollback()
            raise
        self._keys.commit()

    def _rollback(self) -> None:
        self._keys.rollback()
        try:
            self._db.execute("ROLLBACK")
        except duckdb.TransactionException:
            # A failed COMMIT has already ended the transaction.
            logger.debug("No transaction left to roll back in %s", self.path)
        except duckdb.Error as exc:
            # An invalidated database rejects ROLLBACK as well.
            self._note_invalidated(exc)

    def boot_time_ns(self, device_id: str, boot_id: str) -> int | None:
        """Return the stored boot start estimate for an uptime-only boot."""
        with self._reader() as db:
            row = db.execute(
                "SELECT b.boot_time_ns FROM boots b JOIN devices d "
                "USING (device_key) WHERE d.device_id = ? AND b.boot_id = ?",
                [device_id, boot_id],
            ).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    # Device registry ----------------------------------------------------------

    def upsert_device(
        self,
        device_id: str,
        hardware_id: str,
        model: str,
        site: str,
        firmware_version: int,
        token_hash: bytes,
    ) -> DeviceRow:
        """Register a device, or replace the token of an existing one."""
        now = time.time_ns()
        values: dict[str, object] = {
            "hardware_id": hardware_id,
            "model": model,
            "site": site,
            "firmware_version": firmware_version,
            "token_hash": token_hash,
            "revoked": False,
            "token_issue_time_ns": now,
        }
        with self._write_lock:
            self._check_open()
            with self._transaction():
                key = ensure_device(self._db, self._keys, device_id, now)
                _registry.update_registration(self._db, key, values)
            self._forget_tokens()
        return self._require_device(device_id)

    def set_token(self, device_id: str, token_hash: bytes | None) -> DeviceRow:
        """Replace a device's token hash; None revokes it.

        Raises:
            UnknownDevice: The device is not registered.
        """
        values: dict[str, object] = {
            "token_hash": token_hash,
            "revoked": token_hash is None,
        }
        if token_hash is not None:
            values["token_issue_time_ns"] = time.time_ns()
        with self._write_lock:
            self._check_open()
            key = self._keys.devices.get(device_id)
            if key is None:
                raise _registry.UnknownDevice(device_id)
            with self._transaction():
                _registry.update_registration(self._db, key, values)
            self._forget_tokens()
        return self._require_device(device_id)

    def get_device(self, device_id: str) -> DeviceRow | None:
        """Return a device by id, or None."""
        with self._reader() as db:
            return _registry.get_device(db, device_id)

    def find_device_by_hardware_id(self, hardware_id: str) -> DeviceRow | None:
        """Return the device registered with a hardware id, or None."""
        with self._reader() as db:
            return _registry.find_by_hardware_id(db, hardware_id)

    def device_id_for_token_hash(self, token_hash: bytes) -> str | None:
        """Return the device whose active token has this hash, or None."""
        with self._token_lock:
            cached = self._token_devices.get(token_hash)
            generation = self._token_generation
        if cached is not None:
            return cached

        with self._reader() as db:
            device_id = _registry.device_id_for_token_hash(db, token_hash)

        if device_id is not None:
            with self._token_lock:
                if generation == self._token_generation:
                    self._token_devices[token_hash] = device_id
        return device_id

    def _forget_tokens(self) -> None:
        with self._token_lock:
            self._token_devices.clear()
            self._token_generation += 1

    def list_devices(
        self, query: str, offset: int, limit: int
    ) -> tuple[list[DeviceRow], int]:
        """Return one page of devices, most recently seen first, and the total."""
        with self._reader() as db:
            return _registry.list_devices(db, query, offset, limit)

    def _require_device(self, device_id: str) -> DeviceRow:
        row = self.get_device(device_id)
        if row is None:
            raise _registry.UnknownDevice(device_id)
        return row

    # Reads ------------------------------------------------------------------

    def device_exists(self, device_id: str) -> bool:
        """Return whether the device is registered or has stored data."""
        with self._reader() as db:
            return _reader.device_exists(db, device_id)

    def list_streams(self, device_id: str) -> list[StreamInfo]:
        """Return the device's scalar and sampled streams, sorted by name."""
        with self._reader() as db:
            return _reader.list_streams(db, device_id)

    def find_stream(self, device_id: str, name: str) -> StreamInfo | None:
        """Return one stream by name; a scalar series wins over a signal stream."""
        with self._reader() as db:
            return _reader.find_stream(db, device_id, name)

    def count_points(self, series_key: int, start_ns: int, end_ns: int) -> int:
        """Count a series' points with start_ns <= time < end_ns."""
        with self._reader() as db:
            return _reader.count_points(db, series_key, start_ns, end_ns)

    def median_interval_ns(
        self, stream: StreamInfo, channel: str, start_ns: int, end_ns: int
    ) -> int | None:
        """Return the median interval between points in [start_ns, end_ns).

        Args:
            stream: A scalar or sampled stream.
            channel: Channel of a sampled stream; ignored for a scalar one.
            start_ns: Start of the range, inclusive.
            end_ns: End of the range, exclusive.

        Returns:
            The interval in ns, or None when the range has fewer than two
            points.
        """
        with self._reader() as db:
            if stream.kind == SAMPLED:
                info = next(c for c in stream.channels if c.name == channel)
                return _series_reads.channel_median_interval_ns(
                    db, info, start_ns, end_ns
                )
            return _reader.median_interval_ns(db, stream.key, start_ns, end_ns)

    def read_points(
        self,
        stream: StreamInfo,
        start_ns: int,
        end_ns: int,
        *,
        after: tuple[int, int] | None = None,
        limit: int | None = None,
    ) -> PointPage:
        """Read a scalar stream's points in [start_ns, end_ns), in time order.

        Args:
            stream: A scalar stream from list_streams or find_stream.
            start_ns: Start of the range, inclusive.
            end_ns: End of the range, exclusive.
            after: (time_ns, row_id) of the last point of the previous page.
            limit: Maximum number of points to return; None for all.
        """
        with self._reader() as db:
            return _reader.read_points(
                db,
                stream.key,
                stream.value_type,
                start_ns,
                end_ns,
                after=after,
                limit=limit,
            )

    def read_frames(
        self, stream: StreamInfo, start_ns: int, end_ns: int
    ) -> list[StoredFrame]:
        """Return a sampled stream's frames with a sample in [start_ns, end_ns)."""
        with self._reader() as db:
            return _reader.read_frames(db, stream.key, start_ns, end_ns)

    def count_samples(self, stream: StreamInfo, start_ns: int, end_ns: int) -> int:
        """Count a sampled stream's samples per channel in [start_ns, end_ns)."""
        with self._reader() as db:
            return _series_reads.count_samples(db, stream, start_ns, end_ns)

    def scalar_envelope(
        self, stream: StreamInfo, edges: Int64Array
    ) -> downsample.Envelope:
        """Reduce a numeric scalar stream to the buckets between ``edges``."""
        with self._reader() as db:
            return _series_reads.scalar_envelope(db, stream, edges)

    def channel_envelope(
        self, stream: StreamInfo, channel: ChannelInfo, edges: Int64Array
    ) -> downsample.Envelope:
        """Reduce one channel of a sampled stream to the buckets between ``edges``."""
        with self._reader() as db:
            return _series_reads.channel_envelope(db, stream, channel, edges)

    def channel_page(
        self,
        stream: StreamInfo,
        channels: list[str],
        start_ns: int,
        end_ns: int,
        limit: int,
    ) -> ChannelPage:
        """Read up to ``limit`` decoded samples per channel from a range.

        Args:
            stream: A sampled stream.
            channels: Names of the channels to read.
            start_ns: Start of the range, inclusive.
            end_ns: End of the range, exclusive.
            limit: Maximum number of samples per channel.
        """
        with self._reader() as db:
            return _series_reads.channel_page(
                db, stream, channels, start_ns, end_ns, limit
            )

    def list_device_events(
        self,
        device_id: str,
        start_ns: int | None,
        end_ns: int | None,
        after: tuple[int, int] | None,
        limit: int,
    ) -> list[DeviceEventRow]:
        """Return a device's status and alert events, oldest first.

        Args:
            device_id: Device id.
            start_ns: Inclusive lower time bound, or None.
            end_ns: Exclusive upper time bound, or None.
            after: (time_ns, event_key) of the last event of the previous page.
            limit: Maximum number of events to return.
        """
        with self._reader() as db:
            return _reader.list_device_events(
                db, device_id, start_ns, end_ns, after, limit
            )

    @contextmanager
    def _reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Yield a cursor of its own; DuckDB errors become StoreError subclasses.

        Raises:
            StoreOutOfMemory: The query exceeded DuckDB's memory limit.
            StoreFailed: DuckDB has invalidated the database.
        """
        with self._cursor_lock:
            self._check_open()
            cursor = self._root.cursor()
        try:
            yield cursor
        except duckdb.Error as exc:
            self._check_invalidated(exc)
            if isinstance(exc, duckdb.OutOfMemoryException):
                logger.warning("A read exceeded the store's memory limit: %s", exc)
                raise StoreOutOfMemory(self.memory_limit_mb, _first_line(exc)) from exc
            raise
        finally:
            cursor.close()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosed(f"Telemetry store {self.path} is closed")
        if self._failure is not None:
            raise StoreFailed(_failed_message(self.path, self._failure))

    def _check_invalidated(self, exc: BaseException) -> None:
        """Raise StoreFailed when ``exc`` means DuckDB invalidated the database."""
        self._note_invalidated(exc)
        if self._failure is not None:
            raise StoreFailed(_failed_message(self.path, self._failure)) from exc

    def _note_invalidated(self, exc: BaseException) -> None:
        if not _is_invalidation(exc):
            return
        with self._failure_lock:
            if self._failure is not None:
                return
            self._failure = exc
        logger.critical(
            "DuckDB invalidated the telemetry store %s; every read and write now "
            "fails until the server is restarted: %s",
            self.path,
            exc,
        )
        for listener in self._failure_listeners:
            listener(exc)

    # Opening ------------------------------------------------------------------

    def _create_schema(self) -> None:
        self._db.execute(TABLES)
        row = self._db.execute("SELECT max(version) FROM schema_info").fetchone()
        version = row[0] if row else None
        if version is None:
            self._db.execute("INSERT INTO schema_info VALUES (?)", [SCHEMA_VERSION])
        elif version != SCHEMA_VERSION:
            raise StoreError(
                f"Store {self.path} has schema version {version}, but this "
                f"server reads version {SCHEMA_VERSION}; use a matching server "
                "or a new data folder"
            )

    def _load_keys(self) -> None:
        """Load every dimension key, so writes never look them up."""
        keys, db = self._keys, self._db
        for device_id, key in db.execute(
            "SELECT device_id, device_key FROM devices"
        ).fetchall():
            keys.devices.put(device_id, key, pending=False)
        for device_key, boot_id, key in db.execute(
            "SELECT device_key, boot_id, boot_key FROM boots"
        ).fetchall():
            keys.boots.put((device_key, boot_id), key, pending=False)
        for device_key, name, key, value_type in db.execute(
            "SELECT device_key, name, series_key, value_type FROM series"
        ).fetchall():
            keys.series.put(
                (device_key, name),
                SeriesKey(key, ValueType(value_type)),
                pending=False,
            )
        self._load_signal_keys()
        keys.load_counters(db)

    def _load_signal_keys(self) -> None:
        keys, db = self._keys, self._db
        for device_key, name, key in db.execute(
            "SELECT device_key, name, stream_key FROM signal_streams"
        ).fetchall():
            keys.streams.put((device_key, name), key, pending=False)
        names: dict[int, str] = {}
        for stream_key, name, key in db.execute(
            "SELECT stream_key, name, channel_key FROM channels"
        ).fetchall():
            keys.channels.put((stream_key, name), key, pending=False)
            names[key] = name
        for row in db.execute(
            "SELECT stream_key, encoding, layout, channel_keys, channel_units, "
            "scales, offsets, layout_key FROM frame_layouts"
        ).fetchall():
            stream_key, encoding, layout, channel_keys, units, scales, offsets, key = (
                row
            )
            specs = tuple(
                ChannelSpec(names[k], u, s, o)
                for k, u, s, o in zip(channel_keys, units, scales, offsets, strict=True)
            )
            keys.layouts.put((stream_key, encoding, layout, specs), key, pending=False)


def _is_invalidation(exc: BaseException) -> bool:
    # After a failed commit or checkpoint, DuckDB 2.0 raises FatalException or
    # an error whose message contains "has been invalidated".
    return isinstance(exc, duckdb.FatalException) or (
        isinstance(exc, duckdb.Error) and "invalidated" in str(exc)
    )


def _failed_message(path: Path, failure: BaseException) -> str:
    return (
        f"the telemetry store {path} failed ({_first_line(failure)}) and DuckDB "
        "invalidated it; restart the server, which recovers every committed batch"
    )


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
