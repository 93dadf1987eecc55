"""Exponential backoff with jitter."""

import random

from aetus.sdk import Backoff


def test_backoff_doubles_within_jitter_and_bound() -> None:
    backoff = Backoff(100, 1_000, rng=random.Random(7))

    delays = [backoff.next_delay_s() for _ in range(6)]

    ceilings = [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    for delay, ceiling in zip(delays, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling
    assert backoff.failures == 6


def test_backoff_jitter_spreads_clients() -> None:
    first = Backoff(1_000, 10_000, rng=random.Random(1))
    second = Backoff(1_000, 10_000, rng=random.Random(2))

    assert first.next_delay_s() != second.next_delay_s()


def test_backoff_reset_starts_over() -> None:
    backoff = Backoff(100, 1_000)
    for _ in range(5):
        backoff.next_delay_s()

    backoff.reset()

    assert backoff.next_delay_s() <= 0.1
