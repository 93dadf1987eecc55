"""Large byte strings stored as rows of small parts.

DuckDB 2.0 keeps a string of 256 KiB or more in a block of its own. While it
checkpoints, it pins every such block of a row group, so a few frames of
several MiB exhaust a 64 MiB memory limit, and the failed checkpoint
invalidates the database. Strings of a few KiB share ordinary blocks that a
checkpoint writes one at a time. So sample bytes and large event payloads
are cut into parts of PART_BYTES and stored one part per row.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import numpy as np
import numpy.typing as npt

# Measured on a 2-core Linux machine with DuckDB 2.0.1 and a 64 MiB limit,
# inserting 24 MiB per commit from Python: parts of 4, 8 or 16 KiB stayed
# under 210 MB RSS over 12 commits. Parts of 256 KiB invalidated the
# database at the fourth checkpoint.
PART_BYTES = 8192


def part_rows(
    keys: Sequence[int], blobs: Sequence[bytes]
) -> dict[str, npt.NDArray[np.generic]]:
    """Cut each blob into parts and return the columns key, part, bytes."""
    key_column: list[int] = []
    part_column: list[int] = []
    byte_column: list[bytes] = []
    for key, blob in zip(keys, blobs, strict=True):
        view = memoryview(blob)
        for part, offset in enumerate(range(0, len(blob), PART_BYTES)):
            key_column.append(key)
            part_column.append(part)
            byte_column.append(bytes(view[offset : offset + PART_BYTES]))
    data = np.empty(len(byte_column), dtype=object)
    data[:] = byte_column
    return {
        "key": np.asarray(key_column, dtype=np.int64),
        "part": np.asarray(part_column, dtype=np.int32),
        "bytes": data,
    }


def insert_parts(
    db: duckdb.DuckDBPyConnection,
    table: str,
    keys: Sequence[int],
    blobs: Sequence[bytes],
) -> None:
    """Insert the parts of ``blobs`` into ``table`` (key, part, bytes)."""
    if not keys:
        return
    rows = part_rows(keys, blobs)  # noqa: F841  # read by DuckDB's replacement scan
    db.execute(f"INSERT INTO {table} SELECT key, part, bytes FROM rows")


def join_parts(
    db: duckdb.DuckDBPyConnection, table: str, key_column: str, keys: Sequence[int]
) -> dict[int, bytes]:
    """Return the blobs of ``keys`` joined from their parts; absent keys are omitted."""
    low, high = min(keys), max(keys)
    rows = db.execute(
        f"SELECT {key_column}, bytes FROM {table} WHERE {key_column} BETWEEN ? AND ? "
        f"AND {key_column} IN (SELECT unnest(?::BIGINT[])) "
        f"ORDER BY {key_column}, part",
        [low, high, list(keys)],
    ).fetchall()
    pieces: dict[int, list[bytes]] = {}
    for key, data in rows:
        pieces.setdefault(int(key), []).append(bytes(data))
    return {key: b"".join(parts) for key, parts in pieces.items()}


def read_ranges(
    db: duckdb.DuckDBPyConnection,
    table: str,
    key_column: str,
    key: int,
    ranges: Sequence[tuple[int, int]],
) -> list[bytes] | None:
    """Return byte ranges [low, high) of one stored blob, or None when it has no parts.

    Only the parts that overlap a range are fetched, one query per range.
    """
    pieces = []
    for low, high in ranges:
        first_part, last_part = low // PART_BYTES, (high - 1) // PART_BYTES
        rows = db.execute(
            f"SELECT bytes FROM {table} WHERE {key_column} = ? "
            "AND part BETWEEN ? AND ? ORDER BY part",
            [key, first_part, last_part],
        ).fetchall()
        if not rows:
            return None
        data = b"".join(bytes(row[0]) for row in rows)
        offset = low - first_part * PART_BYTES
        pieces.append(data[offset : offset + high - low])
    return pieces
