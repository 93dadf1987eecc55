"""Device registry queries: devices, token hashes and their state."""

from __future__ import annotations

from typing import Any

import duckdb

from aetus.server.records import DeviceRow, StoreError

_DEVICE_COLUMNS = (
    "device_id, hardware_id, model, site, firmware_version, revoked, "
    "create_time_ns, token_issue_time_ns, last_seen_time_ns, last_boot_id, "
    "event_count"
)


class UnknownDevice(StoreError, KeyError):
    """A registry call names a device that is not registered."""

    def __init__(self, device_id: str) -> None:
        self.device_id = device_id
        super().__init__(f"device {device_id!r} is not registered")

    def __str__(self) -> str:
        return f"device {self.device_id!r} is not registered"


def get_device(db: duckdb.DuckDBPyConnection, device_id: str) -> DeviceRow | None:
    """Return one device by id, or None."""
    return _one(db, "device_id = ?", [device_id])


def find_by_hardware_id(
    db: duckdb.DuckDBPyConnection, hardware_id: str
) -> DeviceRow | None:
    """Return the device registered with a hardware id, or None."""
    return _one(db, "hardware_id = ? AND hardware_id <> ''", [hardware_id])


def device_id_for_token_hash(
    db: duckdb.DuckDBPyConnection, token_hash: bytes
) -> str | None:
    """Return the device whose active token has this hash, or None."""
    row = db.execute(
        "SELECT device_id FROM devices WHERE token_hash = ? AND NOT revoked",
        [token_hash],
    ).fetchone()
    return str(row[0]) if row else None


def update_registration(
    db: duckdb.DuckDBPyConnection,
    device_key: int,
    values: dict[str, object],
) -> None:
    """Set registry columns of one device."""
    assignments = ", ".join(f"{column} = ?" for column in values)
    db.execute(
        f"UPDATE devices SET {assignments} WHERE device_key = ?",
        [*values.values(), device_key],
    )


def list_devices(
    db: duckdb.DuckDBPyConnection, query: str, offset: int, limit: int
) -> tuple[list[DeviceRow], int]:
    """Return one page of devices, most recently seen first, and the total.

    ``query`` matches a case-insensitive substring of the device id, hardware
    id, model or site; an empty query matches every device.
    """
    where = (
        "strpos(lower(device_id || chr(0) || hardware_id || chr(0) || model "
        "|| chr(0) || site), lower(?)) > 0"
    )
    total_row = db.execute(
        f"SELECT count(*) FROM devices WHERE {where}", [query]
    ).fetchone()
    rows = db.execute(
        f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE {where} "
        "ORDER BY last_seen_time_ns DESC NULLS LAST, device_id "
        "LIMIT ? OFFSET ?",
        [query, limit, offset],
    ).fetchall()
    total = int(total_row[0]) if total_row else 0
    return [_device_row(row) for row in rows], total


def _one(
    db: duckdb.DuckDBPyConnection, where: str, params: list[object]
) -> DeviceRow | None:
    row = db.execute(
        f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE {where} "
        "ORDER BY device_key LIMIT 1",
        params,
    ).fetchone()
    return _device_row(row) if row else None


def _device_row(row: tuple[Any, ...]) -> DeviceRow:
    (
        device_id,
        hardware_id,
        model,
        site,
        firmware,
        revoked,
        created,
        issued,
        last_seen,
        last_boot,
        events,
    ) = row
    return DeviceRow(
        device_id=str(device_id),
        hardware_id=str(hardware_id),
        model=str(model),
        site=str(site),
        firmware_version=int(firmware),
        revoked=bool(revoked),
        create_time_ns=int(created),
        token_issue_time_ns=int(issued),
        last_seen_time_ns=None if last_seen is None else int(last_seen),
        last_boot_id=str(last_boot),
        event_count=int(events),
    )
