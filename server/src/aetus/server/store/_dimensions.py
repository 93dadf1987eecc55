"""New dimension rows of one write group, keyed in memory and inserted together.

Keys are allocated in Python, and no table declares a foreign key, so fact
rows may refer to a dimension row before it is inserted. The writer collects
every new device, boot, series, stream, channel and layout of a group here and
inserts each table's rows with one ``executemany`` call.
"""

from __future__ import annotations

import duckdb

from aetus.server.store._keys import Keys

_INSERTS = {
    "devices": (
        "INSERT INTO devices (device_key, device_id, create_time_ns) VALUES (?, ?, ?)"
    ),
    "boots": (
        "INSERT INTO boots (boot_key, device_key, boot_id, first_seen_time_ns) "
        "VALUES (?, ?, ?, ?)"
    ),
    "series": "INSERT INTO series VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    "signal_streams": "INSERT INTO signal_streams VALUES (?, ?, ?, ?, ?, 0, ?)",
    "channels": "INSERT INTO channels VALUES (?, ?, ?, ?, 0)",
    "frame_layouts": "INSERT INTO frame_layouts VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
}


class DimensionRows:
    """Dimension rows created by one write group, not yet inserted.

    Their keys go to the pending layer of ``keys`` at once, so later batches
    of the group find them, and a rollback drops them.
    """

    def __init__(self, keys: Keys) -> None:
        self.keys = keys
        self._rows: dict[str, list[list[object]]] = {table: [] for table in _INSERTS}

    def add(self, table: str, row: list[object]) -> None:
        """Queue one row of ``table``, in the column order of its INSERT."""
        self._rows[table].append(row)

    def device(self, device_id: str, now_ns: int) -> int:
        """Return the key of a device, queueing an unregistered row when missing."""
        key = self.keys.devices.get(device_id)
        if key is None:
            key = self.keys.allocate("devices")
            self.add("devices", [key, device_id, now_ns])
            self.keys.devices.put(device_id, key)
        return key

    def boot(self, device_key: int, boot_id: str, now_ns: int) -> int:
        """Return the key of a device's boot, queueing a row when missing."""
        key = self.keys.boots.get((device_key, boot_id))
        if key is None:
            key = self.keys.allocate("boots")
            self.add("boots", [key, device_key, boot_id, now_ns])
            self.keys.boots.put((device_key, boot_id), key)
        return key

    def flush(self, db: duckdb.DuckDBPyConnection) -> None:
        """Insert the queued rows, one ``executemany`` call per table."""
        for table, rows in self._rows.items():
            if rows:
                db.executemany(_INSERTS[table], rows)
                rows.clear()


def ensure_device(
    db: duckdb.DuckDBPyConnection, keys: Keys, device_id: str, now_ns: int
) -> int:
    """Return the key of a device, inserting an unregistered row when missing."""
    rows = DimensionRows(keys)
    key = rows.device(device_id, now_ns)
    rows.flush(db)
    return key
