"""Token files in the data folder: the admin token and issued device tokens.

Files are created with mode 0600 in folders of mode 0700, and written to a
temporary name first, so a crash never leaves a half-written token behind.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = [
    "CredentialError",
    "admin_token_path",
    "device_token_path",
    "read_token_file",
    "write_token_file",
]

ADMIN_TOKEN_FILE = "admin-token"
DEVICE_TOKEN_FOLDER = "device-tokens"


class CredentialError(Exception):
    """A token file is missing, unreadable or empty."""


def admin_token_path(data_dir: Path) -> Path:
    """Return the path of the file with the server's admin token."""
    return data_dir / ADMIN_TOKEN_FILE


def device_token_path(data_dir: Path, device_id: str) -> Path:
    """Return the file that keeps a device's token issued by ``aetus``."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", device_id)
    if safe in ("", ".", ".."):
        safe = "_" + safe
    return data_dir / DEVICE_TOKEN_FOLDER / f"{safe}.token"


def read_token_file(path: Path) -> str:
    """Return the token in ``path``, without surrounding whitespace.

    Raises:
        CredentialError: The file cannot be read or is empty.
    """
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise CredentialError(
            f"token file {path} cannot be read: {exc.strerror}"
        ) from exc
    if not token:
        raise CredentialError(f"token file {path} is empty; write the token into it")
    return token


def write_token_file(path: Path, token: str) -> None:
    """Write ``token`` to ``path`` with mode 0600, replacing any old file."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
