"""Writing scalar points, reading them back, dedup and restart persistence."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from aetus.server.records import ChannelSpec, ValueType
from aetus.server.store import SAMPLED, SCALAR, EmbeddedStore

T0 = 1_714_564_800_000_000_000


def test_store_scalar_round_trip(store: EmbeddedStore, build) -> None:
    times = T0 + np.arange(5, dtype=np.int64) * 1_000_000_000
    values = [1.5, -2.0, np.nan, np.inf, -np.inf]
    result = store.write(
        build.scalar("env/temp", times, values, ValueType.DOUBLE, unit="degC")
    )

    assert result.accepted_count == 5
    assert result.duplicate_count == 0
    stream = store.find_stream("dev-01", "env/temp")
    assert stream is not None
    assert stream.kind == SCALAR
    assert stream.unit == "degC"
    assert stream.point_count == 5
    page = store.read_points(stream, T0, T0 + 10**10)
    assert page.time_ns.tolist() == times.tolist()
    assert page.values[:2].tolist() == [1.5, -2.0]
    assert np.isnan(page.values[2])
    assert page.values[3] == np.inf
    assert page.values[4] == -np.inf


def test_store_restart_keeps_data(store_dir: Path, build) -> None:
    first = EmbeddedStore(store_dir)
    first.write(build.scalar("count", [T0, T0 + 1], [2**62 + 1, -7], ValueType.INT64))
    first.close()

    second = EmbeddedStore(store_dir)
    try:
        stream = second.find_stream("dev-01", "count")
        assert stream is not None
        page = second.read_points(stream, T0, T0 + 2)
        assert page.values.tolist() == [2**62 + 1, -7]
        again = second.write(
            build.scalar("count", [T0, T0 + 1], [2**62 + 1, -7], ValueType.INT64)
        )
        assert again.duplicate_count == 2
        assert again.accepted_count == 0
    finally:
        second.close()


def test_store_scalar_wins_name_clash(store: EmbeddedStore, build) -> None:
    store.write(build.scalar("x", [T0], [1.0], ValueType.DOUBLE))
    data = np.zeros(4, dtype="<i2").tobytes()
    channel = (ChannelSpec("a", "V"),)
    store.write(
        build.frames("x", [(T0, 1000, 4, 2, 1, channel, data)], first_sequence=1)
    )

    found = store.find_stream("dev-01", "x")
    listed = store.list_streams("dev-01")

    assert found is not None
    assert found.kind == SCALAR
    assert [(s.name, s.kind) for s in listed] == [("x", SCALAR), ("x", SAMPLED)]
