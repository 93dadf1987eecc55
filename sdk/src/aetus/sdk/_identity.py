"""Device identity: device id, boot id and the per-boot sequence counter."""

from __future__ import annotations

import logging
import os
import secrets
import threading

_logger = logging.getLogger(__name__)


def new_boot_id() -> str:
    """Return a fresh boot id such as ``py-1f0c2a9be4d35a77``.

    64 random bits make a collision with another boot of the same device
    negligible; the form stays well under the 32 bytes devices allow.
    """
    return f"py-{secrets.token_hex(8)}"


class DeviceIdentity:
    """The (device_id, boot_id, sequence) identity that every event carries.

    The server stores an event once per identity, so a retried event must keep
    its sequence, and two events must never share one. An instance makes a
    fresh boot id when created, so each process (and each instance) counts
    from ``first_sequence`` under a boot id of its own. A process forked from
    this one takes a new boot id at its first event, since parent and child
    would otherwise hand out the same sequences. The counter is thread-safe.

    Args:
        device_id: The device the events belong to. It must match the
            device's token.
        boot_id: Boot id to continue, for example one a gateway kept on disk.
            Default: a fresh one.
        first_sequence: First sequence number to hand out.
        firmware_version: Firmware version stamped on events, packed as
            (major << 24) | (minor << 16) | patch.

    Raises:
        ValueError: ``device_id`` or ``boot_id`` is empty, or
            ``first_sequence`` is negative.
    """

    def __init__(
        self,
        device_id: str,
        *,
        boot_id: str | None = None,
        first_sequence: int = 0,
        firmware_version: int = 0,
    ) -> None:
        if not device_id:
            raise ValueError("device_id is empty; pass the device's id")
        if boot_id is not None and not boot_id:
            raise ValueError("boot_id is empty; pass None to make a fresh one")
        if first_sequence < 0:
            raise ValueError(
                f"first_sequence={first_sequence} is negative; use 0 or more"
            )
        self.device_id = device_id
        self.firmware_version = firmware_version
        self._boot_id = boot_id or new_boot_id()
        self._next_sequence = first_sequence
        self._pid = os.getpid()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"DeviceIdentity(device_id={self.device_id!r}, boot_id={self._boot_id!r}, "
            f"next_sequence={self._next_sequence})"
        )

    @property
    def boot_id(self) -> str:
        """Boot id of the events this instance numbers."""
        return self._boot_id

    @property
    def next_sequence(self) -> int:
        """Sequence the next event gets."""
        return self._next_sequence

    def take_sequences(self, count: int = 1) -> tuple[str, int]:
        """Reserve ``count`` consecutive sequences.

        Args:
            count: How many to reserve, at least 1.

        Returns:
            The boot id and the first reserved sequence.
        """
        if count < 1:
            raise ValueError(f"count={count} must be at least 1")
        with self._lock:
            if os.getpid() != self._pid:
                self._start_new_boot()
            first = self._next_sequence
            self._next_sequence += count
            return self._boot_id, first

    def _start_new_boot(self) -> None:
        old = self._boot_id
        self._boot_id = new_boot_id()
        self._next_sequence = 0
        self._pid = os.getpid()
        _logger.debug(
            "Device %s: forked process takes boot id %s in place of %s",
            self.device_id,
            self._boot_id,
            old,
        )
