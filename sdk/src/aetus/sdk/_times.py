"""Conversions between the time types callers use and nanoseconds since the epoch."""

from __future__ import annotations

import datetime as dt
from typing import TypeAlias

import numpy as np
from google.protobuf import timestamp_pb2

# A point in time: an aware datetime, a numpy datetime64, or an int of
# nanoseconds since the Unix epoch. Naive datetimes are rejected because
# their meaning depends on the machine's time zone.
TimeLike: TypeAlias = dt.datetime | np.datetime64 | int

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_NS_PER_S = 1_000_000_000


def to_time_ns(value: TimeLike, *, name: str = "time") -> int:
    """Convert a point in time to nanoseconds since the Unix epoch.

    Args:
        value: The time. A ``pandas.Timestamp`` counts as a datetime, and its
            nanoseconds are kept.
        name: Argument name, for error messages.

    Returns:
        Nanoseconds since 1970-01-01T00:00:00Z.

    Raises:
        ValueError: A naive datetime or a NaT value.
        TypeError: A value of another type, such as a float.
    """
    if isinstance(value, dt.datetime):
        return _datetime_ns(value, name)
    if isinstance(value, np.datetime64):
        if np.isnat(value):
            raise ValueError(f"{name} is NaT; pass a valid time")
        return int(value.astype("datetime64[ns]").astype(np.int64))
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        return int(value)
    raise TypeError(
        f"{name}={value!r} has type {type(value).__name__}; pass an aware "
        "datetime, a numpy datetime64 or an int of nanoseconds since the epoch"
    )


def _datetime_ns(value: dt.datetime, name: str) -> int:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"{name}={value.isoformat()} has no time zone; pass an aware datetime "
            "such as datetime.now(timezone.utc)"
        )
    delta = value - _EPOCH
    micros = delta // dt.timedelta(microseconds=1)
    extra_ns = int(getattr(value, "nanosecond", 0))
    return micros * 1000 + extra_ns


def times_to_ns(values: object, *, name: str = "times") -> np.ndarray:
    """Convert an array of times to int64 nanoseconds since the epoch.

    Args:
        values: datetime64 values of any unit, or integers of nanoseconds.
        name: Argument name, for error messages.

    Returns:
        A 1-D int64 array.

    Raises:
        ValueError: The array is not 1-D, contains NaT, or has another dtype.
    """
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {array.shape}")
    if np.issubdtype(array.dtype, np.datetime64):
        missing = np.isnat(array)
        if missing.any():
            index = int(missing.argmax())
            raise ValueError(f"{name} contains NaT at index {index}; pass valid times")
        return array.astype("datetime64[ns]").astype(np.int64)
    if np.issubdtype(array.dtype, np.integer):
        if array.size and int(array.max()) > np.iinfo(np.int64).max:
            raise ValueError(
                f"{name} contains {int(array.max())}, above the int64 maximum of "
                "nanoseconds since the epoch"
            )
        return array.astype(np.int64)
    raise ValueError(
        f"{name} has dtype {array.dtype}; pass datetime64 values or int64 "
        "nanoseconds since the epoch"
    )


def timestamp_from_ns(time_ns: int) -> timestamp_pb2.Timestamp:
    """Build a protobuf Timestamp from nanoseconds since the epoch."""
    seconds, nanos = divmod(time_ns, _NS_PER_S)
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)


def ns_from_timestamp(timestamp: timestamp_pb2.Timestamp) -> int:
    """Return a protobuf Timestamp as nanoseconds since the epoch."""
    return int(timestamp.seconds) * _NS_PER_S + int(timestamp.nanos)
