"""Envelope buckets, NaN and gap handling, and calendar buckets."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from aetus.server import downsample

MS = 1_000_000
S = 1_000_000_000
T0 = 1_714_564_800 * S  # 2024-05-01T12:00:00Z


def utc_ns(text: str) -> int:
    moment = dt.datetime.fromisoformat(text)
    return int(moment.timestamp()) * S


def spiky_sine() -> tuple[np.ndarray, np.ndarray]:
    """16,000 samples at 1 ms: a unit sine with -50 at 7000 and +50 at 9000."""
    times = T0 + np.arange(16_000, dtype=np.int64) * MS
    values = np.sin(np.arange(16_000) / 100.0)
    values[7000] = -50.0
    values[9000] = 50.0
    return times, values


def envelope_points(env: downsample.Envelope) -> list[tuple[int, float]]:
    """Draw each bucket as its min and max, in time order."""
    points: list[tuple[int, float]] = []
    for i in range(len(env)):
        if env.finite_count[i] == 0:
            continue
        pair = sorted(
            {
                (int(env.min_time_ns[i]), float(env.minimum[i])),
                (int(env.max_time_ns[i]), float(env.maximum[i])),
            }
        )
        points.extend(pair)
    return points


def test_envelope_keeps_spikes_of_both_signs() -> None:
    times, values = spiky_sine()
    edges = downsample.equal_width_edges(int(times[0]), int(times[-1]) + 1, 800)

    env = downsample.envelope(times, values, edges)
    points = envelope_points(env)

    assert len(points) <= 1600
    assert (int(times[7000]), -50.0) in points
    assert (int(times[9000]), 50.0) in points
    assert min(v for _, v in points) == values.min()
    assert max(v for _, v in points) == values.max()
    assert [t for t, _ in points] == sorted(t for t, _ in points)


def test_envelope_keeps_first_and_last_sample() -> None:
    times, values = spiky_sine()
    edges = downsample.equal_width_edges(int(times[0]), int(times[-1]) + 1, 800)

    env = downsample.envelope(times, values, edges)

    assert env.first[0] == values[0]
    assert env.first_time_ns[0] == times[0]
    assert env.last[-1] == values[-1]
    assert env.last_time_ns[-1] == times[-1]
    assert env.count.sum() == 16_000


def test_envelope_matches_per_bucket_reference() -> None:
    times, values = spiky_sine()
    edges = downsample.equal_width_edges(int(times[0]), int(times[-1]) + 1, 37)

    env = downsample.envelope(times, values, edges)

    for i in range(37):
        inside = (times >= edges[i]) & (times < edges[i + 1])
        assert env.count[i] == inside.sum()
        assert env.minimum[i] == values[inside].min()
        assert env.maximum[i] == values[inside].max()
        assert env.mean[i] == pytest.approx(values[inside].mean())
        assert env.min_time_ns[i] == times[inside][np.argmin(values[inside])]


def b39_series() -> tuple[np.ndarray, np.ndarray]:
    """1 Hz from 10:00 to 11:00 UTC, no samples 10:20-10:30, NaN 10:40:00-09."""
    start = utc_ns("2024-05-01T10:00:00+00:00")
    seconds = np.arange(3600)
    seconds = seconds[(seconds < 1200) | (seconds >= 1800)]
    times = start + seconds.astype(np.int64) * S
    values = np.cos(seconds / 60.0)
    values[(seconds >= 2400) & (seconds < 2410)] = np.nan
    return times, values


def test_gap_after_marks_the_missing_ten_minutes() -> None:
    times, _ = b39_series()

    marks = downsample.gap_after(times)

    assert marks.sum() == 1
    index = int(np.flatnonzero(marks)[0])
    assert times[index] == utc_ns("2024-05-01T10:19:59+00:00")
    assert times[index + 1] == utc_ns("2024-05-01T10:30:00+00:00")


def test_envelope_nan_and_gap_buckets() -> None:
    times, values = b39_series()
    start = utc_ns("2024-05-01T10:00:00+00:00")
    edges = downsample.equal_width_edges(start, start + 3600 * S, 100)

    env = downsample.envelope(times, values, edges)

    gap = (edges[:-1] >= start + 1200 * S) & (edges[1:] <= start + 1800 * S)
    assert gap.sum() == 16
    assert (env.count[gap] == 0).all()
    assert np.isnan(env.minimum[gap]).all()
    nan_bucket = int(np.searchsorted(edges, start + 2400 * S, side="right") - 1)
    assert env.count[nan_bucket] == 36
    assert env.finite_count[nan_bucket] == 26
    assert np.isfinite(env.minimum[nan_bucket])
    assert np.isfinite(env.mean).sum() == (env.finite_count > 0).sum()
    for i in np.flatnonzero(env.finite_count > 0):
        inside = (times >= edges[i]) & (times < edges[i + 1])
        assert env.minimum[i] == np.nanmin(values[inside])
        assert env.maximum[i] == np.nanmax(values[inside])


def test_envelope_all_nan_bucket_has_count_only() -> None:
    times, values = b39_series()
    start = utc_ns("2024-05-01T10:40:00+00:00")
    edges = np.array([start, start + 10 * S, start + 20 * S], dtype=np.int64)

    env = downsample.envelope(times, values, edges)

    assert env.count.tolist() == [10, 10]
    assert env.finite_count.tolist() == [0, 10]
    assert np.isnan(env.minimum[0])
    assert np.isnan(env.maximum[0])
    assert np.isnan(env.mean[0])


@pytest.mark.parametrize(
    ("day", "hours"),
    [("2024-10-27", 25), ("2024-03-31", 23), ("2024-05-01", 24)],
    ids=["fall-back", "spring-forward", "plain"],
)
def test_calendar_day_length_in_berlin(day: str, hours: int) -> None:
    local_midnight = dt.datetime.fromisoformat(day).replace(
        tzinfo=__import__("zoneinfo").ZoneInfo("Europe/Berlin")
    )
    start = int(local_midnight.timestamp()) * S
    times = start - 3600 * S + np.arange(60 * 27, dtype=np.int64) * 60 * S
    values = np.ones(len(times))
    edges = downsample.calendar_edges(
        start, start + hours * 3600 * S, "day", "Europe/Berlin", max_buckets=10
    )

    env = downsample.envelope(times, values, edges)

    assert len(env) == 1
    assert edges[1] - edges[0] == hours * 3600 * S
    assert env.count[0] == hours * 60


def test_calendar_hours_across_fall_back() -> None:
    start = utc_ns("2024-10-26T23:00:00+00:00")
    end = utc_ns("2024-10-27T03:00:00+00:00")

    edges = downsample.calendar_edges(
        start, end, "hour", "Europe/Berlin", max_buckets=10
    )

    assert (np.diff(edges) == 3600 * S).all()
    assert edges[0] == start
    assert edges[-1] == end
    assert len(edges) == 5


def test_calendar_hours_in_half_hour_zone() -> None:
    start = utc_ns("2024-05-01T00:00:00+00:00")

    edges = downsample.calendar_edges(
        start, start + 3 * 3600 * S, "hour", "Asia/Kolkata", max_buckets=10
    )

    assert edges[0] == start - 1800 * S
    assert (np.diff(edges) == 3600 * S).all()


def test_calendar_edges_reject_too_many_buckets() -> None:
    with pytest.raises(ValueError, match="more than 100"):
        downsample.calendar_edges(
            T0, T0 + 200 * 3600 * S, "hour", "UTC", max_buckets=100
        )


def test_reduce_items_merges_partial_envelopes() -> None:
    times, values = spiky_sine()
    edges = downsample.equal_width_edges(int(times[0]), int(times[-1]) + 1, 50)
    whole = downsample.envelope(times, values, edges)

    halves = [
        downsample.envelope(times[:8001], values[:8001], edges).as_items(),
        downsample.envelope(times[8001:], values[8001:], edges).as_items(),
    ]
    merged = downsample.reduce_items(downsample.concat_items(halves), edges)

    assert merged.count.tolist() == whole.count.tolist()
    assert merged.minimum.tolist() == whole.minimum.tolist()
    assert merged.max_time_ns.tolist() == whole.max_time_ns.tolist()
    assert merged.first.tolist() == whole.first.tolist()
    assert merged.last.tolist() == whole.last.tolist()
