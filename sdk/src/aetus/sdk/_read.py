"""Read results as numpy arrays: raw points and envelope buckets per channel."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from google.protobuf import timestamp_pb2

from aetus.query.v1 import query_service_pb2

_DOUBLE = query_service_pb2.VALUE_TYPE_DOUBLE
_INT64 = query_service_pb2.VALUE_TYPE_INT64
_BOOL = query_service_pb2.VALUE_TYPE_BOOL
_STRING = query_service_pb2.VALUE_TYPE_STRING


@dataclass(slots=True)
class Series:
    """Raw points of one channel, in time order.

    Each position is a reading, a missing reading (a point stored without a
    value, such as a failed sensor read) or a gap marker (a break the server
    placed inside a long interval, for plots). Two boolean masks tell them
    apart: ``missing`` and ``gaps`` are never both True, and a position with
    neither is a reading. The masks are plain arrays beside ``values`` rather
    than a numpy masked array, so ``values`` keeps its dtype and works with
    any numpy function. ``masked_values()`` returns the masked array for
    callers who prefer one.

    At missing readings and gap markers ``values`` contains a placeholder: NaN
    for float64, 0 for int64, False for bool and None for strings. A NaN at a
    position with both masks False is a NaN that was stored.

    Attributes:
        channel: Channel name; empty for a scalar stream.
        unit: Unit of the values.
        times: Point times, datetime64[ns] in UTC.
        values: float64 for doubles and signal channels, int64 for integers,
            bool for booleans, and an object array of str for string markers.
        gaps: True where a point is a gap marker.
        missing: True where a point is a missing reading.
    """

    channel: str
    unit: str
    times: npt.NDArray[np.datetime64]
    values: npt.NDArray[Any]
    gaps: npt.NDArray[np.bool_]
    missing: npt.NDArray[np.bool_]

    @property
    def times_ns(self) -> npt.NDArray[np.int64]:
        """Point times as int64 nanoseconds since the epoch."""
        return self.times.view(np.int64)

    @property
    def readings(self) -> npt.NDArray[np.bool_]:
        """True where a point is a reading: neither missing nor a gap marker."""
        return ~(self.missing | self.gaps)

    def masked_values(self) -> np.ma.MaskedArray[Any, Any]:
        """Return ``values`` masked at missing readings and gap markers."""
        return np.ma.MaskedArray(self.values, mask=self.missing | self.gaps)

    def __len__(self) -> int:
        return int(self.times.size)


@dataclass(slots=True)
class EnvelopeSeries:
    """Min/max envelope buckets of one channel, in time order.

    Statistics of a bucket without finite values are NaN, and its min and
    max times are NaT.

    Attributes:
        channel: Channel name; empty for a scalar stream.
        unit: Unit of the values.
        start_times: Bucket starts, datetime64[ns], inclusive.
        end_times: Bucket ends, datetime64[ns], exclusive.
        counts: Values per bucket, int64, NaN values included.
        mins: Smallest finite value per bucket.
        maxs: Largest finite value per bucket.
        firsts: First finite value per bucket.
        lasts: Last finite value per bucket.
        means: Mean of the finite values per bucket.
        min_times: Time of each bucket's smallest value.
        max_times: Time of each bucket's largest value.
    """

    channel: str
    unit: str
    start_times: np.ndarray
    end_times: np.ndarray
    counts: np.ndarray
    mins: np.ndarray
    maxs: np.ndarray
    firsts: np.ndarray
    lasts: np.ndarray
    means: np.ndarray
    min_times: np.ndarray
    max_times: np.ndarray

    def __len__(self) -> int:
        return int(self.start_times.size)


@dataclass(slots=True)
class StreamData:
    """The result of ``read_stream``.

    Attributes:
        stream: Description of the stream read (kind, value type, channels).
        mode: ``raw`` when ``series`` contains Series, ``envelope`` when it contains
            EnvelopeSeries.
        source_point_count: Points per channel in the range before reduction.
        series: One entry per channel read, by channel name. The one series
            of a scalar stream has the name "".
    """

    stream: query_service_pb2.Stream
    mode: str
    source_point_count: int
    series: dict[str, Series | EnvelopeSeries] = field(default_factory=dict)

    def __getitem__(self, channel: str) -> Series | EnvelopeSeries:
        return self.series[channel]


def raw_series(
    pages: Sequence[query_service_pb2.ChannelSeries], value_type: int
) -> Series:
    """Join the pages of one channel's raw points into arrays."""
    points = [point for page in pages for point in page.points]
    count = len(points)
    times = np.fromiter(
        (p.time.seconds * 1_000_000_000 + p.time.nanos for p in points),
        dtype=np.int64,
        count=count,
    ).view("datetime64[ns]")
    gaps = np.fromiter((p.gap for p in points), dtype=bool, count=count)
    # A point with no value is a gap marker when `gap` is set, else a
    # reading that was stored without a value.
    valued = np.fromiter(
        (p.WhichOneof("value") is not None for p in points), dtype=bool, count=count
    )
    first = pages[0]
    return Series(
        channel=first.channel,
        unit=first.unit,
        times=times,
        values=_point_values(points, value_type),
        gaps=gaps,
        missing=~(valued | gaps),
    )


def _point_values(
    points: Sequence[query_service_pb2.Point], value_type: int
) -> npt.NDArray[Any]:
    count = len(points)
    if value_type == _INT64:
        return np.fromiter((p.int_value for p in points), dtype=np.int64, count=count)
    if value_type == _BOOL:
        return np.fromiter((p.bool_value for p in points), dtype=bool, count=count)
    if value_type == _STRING:
        strings = [
            p.string_value if p.HasField("string_value") else None for p in points
        ]
        return np.array(strings, dtype=object)
    return np.fromiter(
        (p.double_value if p.HasField("double_value") else np.nan for p in points),
        dtype=np.float64,
        count=count,
    )


def envelope_series(series: query_service_pb2.ChannelSeries) -> EnvelopeSeries:
    """Convert one channel's envelope buckets into arrays."""
    buckets = list(series.buckets)
    return EnvelopeSeries(
        channel=series.channel,
        unit=series.unit,
        start_times=_times(b.start_time for b in buckets),
        end_times=_times(b.end_time for b in buckets),
        counts=np.array([b.count for b in buckets], dtype=np.int64),
        mins=_optional(buckets, "min"),
        maxs=_optional(buckets, "max"),
        firsts=_optional(buckets, "first"),
        lasts=_optional(buckets, "last"),
        means=_optional(buckets, "mean"),
        min_times=_optional_times(buckets, "min", "min_time"),
        max_times=_optional_times(buckets, "max", "max_time"),
    )


def _times(stamps: Iterable[timestamp_pb2.Timestamp]) -> np.ndarray:
    values = [stamp.seconds * 1_000_000_000 + stamp.nanos for stamp in stamps]
    return np.array(values, dtype=np.int64).view("datetime64[ns]")


def _optional(buckets: Sequence[query_service_pb2.Bucket], name: str) -> np.ndarray:
    return np.array(
        [getattr(b, name) if b.HasField(name) else np.nan for b in buckets],
        dtype=np.float64,
    )


def _optional_times(
    buckets: Sequence[query_service_pb2.Bucket], value: str, time_field: str
) -> np.ndarray:
    result = np.full(len(buckets), np.datetime64("NaT"), dtype="datetime64[ns]")
    for index, bucket in enumerate(buckets):
        if bucket.HasField(value):
            stamp = getattr(bucket, time_field)
            result[index] = np.datetime64(
                stamp.seconds * 1_000_000_000 + stamp.nanos, "ns"
            )
    return result
