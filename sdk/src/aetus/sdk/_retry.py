"""Exponential backoff with jitter, and the retry loop of unary calls."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc

from aetus.sdk._errors import AetusError, error_from_rpc_error

_logger = logging.getLogger(__name__)

T = TypeVar("T")


class Backoff:
    """Delays that double from an initial value up to a bound, with jitter.

    Each delay is drawn uniformly from [d/2, d], where d is the doubled
    delay, so clients that failed together do not retry together.
    """

    def __init__(
        self,
        initial_ms: int,
        max_ms: int,
        rng: random.Random | None = None,
    ) -> None:
        self._initial_s = initial_ms / 1000
        self._max_s = max_ms / 1000
        self._rng = rng or random.Random()
        self._failures = 0

    @property
    def failures(self) -> int:
        """Failures since the last reset."""
        return self._failures

    def next_delay_s(self) -> float:
        """Count one failure and return the delay before the next attempt."""
        ceiling = min(self._max_s, self._initial_s * 2**self._failures)
        self._failures += 1
        return self._rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        """Start again from the initial delay, after a success."""
        self._failures = 0


async def call_with_retry(
    call: Callable[[], Awaitable[T]],
    *,
    method: str,
    target: str,
    max_attempts: int,
    backoff: Backoff,
) -> T:
    """Run a unary call, retrying retriable failures with backoff.

    Only retriable codes are retried (UNAVAILABLE, DEADLINE_EXCEEDED, ABORTED,
    RESOURCE_EXHAUSTED from a rate limit). A delay the server asks for in a
    RetryInfo detail replaces the backoff delay.

    Args:
        call: Starts one attempt. It raises grpc.aio.AioRpcError, or an
            AetusError when it maps its failure itself.
        method: RPC name, for logs.
        target: Server address, for logs.
        max_attempts: Attempts in total, the first included.
        backoff: Source of delays.

    Returns:
        The response of the first successful attempt.

    Raises:
        AetusError: The mapped error of the last attempt, or the first
            non-retriable one.
    """
    attempt = 1
    while True:
        try:
            return await call()
        except grpc.aio.AioRpcError as exc:
            error = error_from_rpc_error(exc)
            if not error.retriable or attempt >= max_attempts:
                _log_give_up(method, target, attempt, error)
                raise error from exc
        except AetusError as exc:
            error = exc
            if not error.retriable or attempt >= max_attempts:
                _log_give_up(method, target, attempt, error)
                raise
        delay_s = _retry_delay_s(error, backoff)
        _logger.warning(
            "%s to %s failed with %s (attempt %d of %d); retrying in %.2f s",
            method,
            target,
            error.code.name if error.code else "error",
            attempt,
            max_attempts,
            delay_s,
        )
        await asyncio.sleep(delay_s)
        attempt += 1


def _retry_delay_s(error: AetusError, backoff: Backoff) -> float:
    delay_s = backoff.next_delay_s()
    if error.retry_delay_s is not None:
        return error.retry_delay_s
    return delay_s


def _log_give_up(method: str, target: str, attempts: int, error: AetusError) -> None:
    # A non-retriable error goes to the caller at once, so it is not a give-up.
    level = logging.ERROR if error.retriable else logging.DEBUG
    _logger.log(
        level,
        "%s to %s failed after %d attempt(s): %s %s",
        method,
        target,
        attempts,
        error.code.name if error.code else "error",
        error.message,
    )
