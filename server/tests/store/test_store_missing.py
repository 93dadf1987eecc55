"""Missing readings in the store: NULL in every value column, skipped by statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aetus.server.records import SeriesTypeConflict, ValueType
from aetus.server.store import EmbeddedStore

S = 1_000_000_000
T0 = 1_714_564_800 * S


def with_missing(batch, mask: list[bool]):
    """Mark points of the batch's only series as missing readings."""
    batch.metrics[0].missing = np.array(mask, dtype=np.bool_)
    return batch


@pytest.mark.parametrize(
    ("value_type", "values", "placeholder"),
    [
        (ValueType.DOUBLE, [1.5, np.nan, 0.0], math.nan),
        (ValueType.INT64, [-3, 0, 0], 0),
        (ValueType.BOOL, [1, 0, 0], 0),
        (ValueType.STRING, ["on", "", ""], ""),
    ],
    ids=["double", "int64", "bool", "string"],
)
def test_store_missing_reading_is_null(
    store: EmbeddedStore, build, value_type, values, placeholder
) -> None:
    times = T0 + np.arange(3, dtype=np.int64) * S
    batch = with_missing(
        build.scalar("m", times, values, value_type), [False, True, False]
    )

    store.write(batch)

    stream = store.find_stream("dev-01", "m")
    page = store.read_points(stream, 0, 2**62)
    assert stream.value_type == value_type
    assert stream.point_count == 3
    assert page.missing.tolist() == [False, True, False]
    assert page.values[2] == values[2]
    if isinstance(placeholder, float):
        assert math.isnan(page.values[1])
    else:
        assert page.values[1] == placeholder


def test_store_all_missing_fits_stored_type(store: EmbeddedStore, build) -> None:
    store.write(build.scalar("n", [T0], [4], ValueType.INT64))
    gap = with_missing(
        build.scalar("n", [T0 + S], [np.nan], ValueType.DOUBLE, first_sequence=1),
        [True],
    )
    fresh = with_missing(
        build.scalar("f", [T0 + S], [np.nan], ValueType.DOUBLE, first_sequence=2),
        [True],
    )
    wrong = build.scalar("f", [T0 + 2 * S], ["x"], ValueType.STRING, first_sequence=3)

    results = store.write_many([gap, fresh, wrong])

    assert results[0].accepted_count == 1
    assert results[1].accepted_count == 1
    assert isinstance(results[2], SeriesTypeConflict)
    assert store.find_stream("dev-01", "n").value_type == ValueType.INT64
    assert store.find_stream("dev-01", "f").value_type == ValueType.DOUBLE
    page = store.read_points(store.find_stream("dev-01", "n"), 0, 2**62)
    assert page.values.tolist() == [4, 0]
    assert page.missing.tolist() == [False, True]


@pytest.mark.parametrize(
    "edges",
    [
        np.array([T0, T0 + 10 * S], dtype=np.int64),
        # Inner edges 1 ns apart leave no SQL grid of at most a million
        # cells, so the points are read and reduced in numpy instead.
        np.array([T0, T0 + 1, T0 + 3, T0 + 10 * S], dtype=np.int64),
    ],
    ids=["sql-grid", "numpy-chunks"],
)
def test_store_missing_skipped_by_envelope(store: EmbeddedStore, build, edges) -> None:
    times = T0 + np.arange(1, 6, dtype=np.int64) * S
    batch = with_missing(
        build.scalar("e", times, [9.0, 2.0, np.nan, -1.0, 7.0], ValueType.DOUBLE),
        [True, False, False, False, True],
    )
    store.write(batch)
    stream = store.find_stream("dev-01", "e")

    envelope = store.scalar_envelope(stream, edges)

    last = len(edges) - 2
    assert envelope.count[last] == 5
    assert envelope.finite_count[last] == 2
    assert envelope.minimum[last] == -1.0
    assert envelope.maximum[last] == 2.0
    assert envelope.first[last] == 2.0
    assert envelope.last[last] == -1.0
    assert envelope.mean[last] == 0.5
