"""Device registry: registration, tokens, revocation, search and events."""

from __future__ import annotations

from pathlib import Path

import pytest

from aetus.server.records import EventKind, ValueType
from aetus.server.store import EmbeddedStore, UnknownDevice
from aetus.telemetry.v1 import telemetry_pb2

S = 1_000_000_000
T0 = 1_714_564_800 * S


def register(store: EmbeddedStore, device_id: str, token: bytes, **fields: str):
    return store.upsert_device(
        device_id,
        fields.get("hardware_id", f"hw-{device_id}"),
        fields.get("model", "esp32-c5"),
        fields.get("site", "factory-a"),
        0x010203,
        token,
    )


def test_registry_upsert_and_lookup(store: EmbeddedStore) -> None:
    row = register(store, "dev-01", b"hash-1")

    assert row.device_id == "dev-01"
    assert row.hardware_id == "hw-dev-01"
    assert row.revoked is False
    assert row.token_issue_time_ns > 0
    assert row.last_seen_time_ns is None
    assert store.device_id_for_token_hash(b"hash-1") == "dev-01"
    assert store.find_device_by_hardware_id("hw-dev-01").device_id == "dev-01"
    assert store.get_device("nobody") is None


def test_registry_rotate_and_revoke(store: EmbeddedStore) -> None:
    register(store, "dev-01", b"old")

    register(store, "dev-01", b"new")
    assert store.device_id_for_token_hash(b"old") is None
    assert store.device_id_for_token_hash(b"new") == "dev-01"

    revoked = store.set_token("dev-01", None)
    assert revoked.revoked is True
    assert store.device_id_for_token_hash(b"new") is None

    restored = store.set_token("dev-01", b"third")
    assert restored.revoked is False
    assert store.device_id_for_token_hash(b"third") == "dev-01"


def test_registry_lookup_after_rotation(store: EmbeddedStore) -> None:
    register(store, "dev-01", b"first")
    assert store.device_id_for_token_hash(b"first") == "dev-01"

    register(store, "dev-01", b"second")
    assert store.device_id_for_token_hash(b"first") is None
    assert store.device_id_for_token_hash(b"second") == "dev-01"

    store.set_token("dev-01", b"third")
    assert store.device_id_for_token_hash(b"second") is None
    assert store.device_id_for_token_hash(b"third") == "dev-01"

    store.set_token("dev-01", None)
    assert store.device_id_for_token_hash(b"third") is None


def test_registry_set_token_unknown_device(store: EmbeddedStore) -> None:
    with pytest.raises(UnknownDevice, match="'ghost' is not registered"):
        store.set_token("ghost", b"x")


def test_registry_list_search_and_order(store: EmbeddedStore, build) -> None:
    register(store, "dev-01", b"a", site="factory-a")
    register(store, "dev-02", b"b", site="Factory-B")
    register(store, "dev-03", b"c", site="lab")
    store.write(build.scalar("u", [T0], [1.0], ValueType.DOUBLE, device_id="dev-03"))

    everything, total = store.list_devices("", 0, 10)
    factories, factory_total = store.list_devices("FACTORY", 0, 10)
    page, _ = store.list_devices("", 1, 1)

    assert total == 3
    assert [row.device_id for row in everything] == ["dev-03", "dev-01", "dev-02"]
    assert factory_total == 2
    assert {row.device_id for row in factories} == {"dev-01", "dev-02"}
    assert [row.device_id for row in page] == ["dev-01"]


def test_registry_survives_restart(store_dir: Path) -> None:
    first = EmbeddedStore(store_dir)
    register(first, "dev-01", b"hash")
    first.close()

    second = EmbeddedStore(store_dir)
    try:
        assert second.device_id_for_token_hash(b"hash") == "dev-01"
    finally:
        second.close()


def test_store_device_events_paging(store: EmbeddedStore, build) -> None:
    times = [T0 + i * S for i in (3, 1, 2, 5, 4)]
    store.write(build.status(times, boot_id="boot-9"))

    first = store.list_device_events("dev-01", None, None, None, 3)
    last = first[-1]
    rest = store.list_device_events(
        "dev-01", None, None, (last.time_ns, last.event_key), 3
    )
    ranged = store.list_device_events("dev-01", T0 + 2 * S, T0 + 4 * S, None, 10)

    assert [row.time_ns for row in first + rest] == sorted(times)
    assert [row.time_ns for row in ranged] == [T0 + 2 * S, T0 + 3 * S]
    assert first[0].boot_id == "boot-9"
    assert first[0].sequence == 1
    assert first[0].kind == EventKind.STATUS
    body = telemetry_pb2.StatusEvent.FromString(first[0].body)
    assert body.reset_reason == "reason-1"
