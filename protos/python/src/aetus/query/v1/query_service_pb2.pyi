import datetime

from aetus.telemetry.v1 import telemetry_pb2 as _telemetry_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ReadMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    READ_MODE_UNSPECIFIED: _ClassVar[ReadMode]
    READ_MODE_RAW: _ClassVar[ReadMode]
    READ_MODE_ENVELOPE: _ClassVar[ReadMode]

class CalendarUnit(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CALENDAR_UNIT_UNSPECIFIED: _ClassVar[CalendarUnit]
    CALENDAR_UNIT_HOUR: _ClassVar[CalendarUnit]
    CALENDAR_UNIT_DAY: _ClassVar[CalendarUnit]

class StreamKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STREAM_KIND_UNSPECIFIED: _ClassVar[StreamKind]
    STREAM_KIND_SCALAR: _ClassVar[StreamKind]
    STREAM_KIND_SAMPLED: _ClassVar[StreamKind]

class ValueType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VALUE_TYPE_UNSPECIFIED: _ClassVar[ValueType]
    VALUE_TYPE_DOUBLE: _ClassVar[ValueType]
    VALUE_TYPE_INT64: _ClassVar[ValueType]
    VALUE_TYPE_BOOL: _ClassVar[ValueType]
    VALUE_TYPE_STRING: _ClassVar[ValueType]
READ_MODE_UNSPECIFIED: ReadMode
READ_MODE_RAW: ReadMode
READ_MODE_ENVELOPE: ReadMode
CALENDAR_UNIT_UNSPECIFIED: CalendarUnit
CALENDAR_UNIT_HOUR: CalendarUnit
CALENDAR_UNIT_DAY: CalendarUnit
STREAM_KIND_UNSPECIFIED: StreamKind
STREAM_KIND_SCALAR: StreamKind
STREAM_KIND_SAMPLED: StreamKind
VALUE_TYPE_UNSPECIFIED: ValueType
VALUE_TYPE_DOUBLE: ValueType
VALUE_TYPE_INT64: ValueType
VALUE_TYPE_BOOL: ValueType
VALUE_TYPE_STRING: ValueType

class ListStreamsRequest(_message.Message):
    __slots__ = ("device_id",)
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    device_id: str
    def __init__(self, device_id: _Optional[str] = ...) -> None: ...

class ListStreamsResponse(_message.Message):
    __slots__ = ("streams",)
    STREAMS_FIELD_NUMBER: _ClassVar[int]
    streams: _containers.RepeatedCompositeFieldContainer[Stream]
    def __init__(self, streams: _Optional[_Iterable[_Union[Stream, _Mapping]]] = ...) -> None: ...

class ReadStreamRequest(_message.Message):
    __slots__ = ("device_id", "stream", "start_time", "end_time", "max_points", "mode", "channels", "page_token", "calendar_unit", "time_zone")
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    MAX_POINTS_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    CALENDAR_UNIT_FIELD_NUMBER: _ClassVar[int]
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    device_id: str
    stream: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    max_points: int
    mode: ReadMode
    channels: _containers.RepeatedScalarFieldContainer[str]
    page_token: str
    calendar_unit: CalendarUnit
    time_zone: str
    def __init__(self, device_id: _Optional[str] = ..., stream: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., max_points: _Optional[int] = ..., mode: _Optional[_Union[ReadMode, str]] = ..., channels: _Optional[_Iterable[str]] = ..., page_token: _Optional[str] = ..., calendar_unit: _Optional[_Union[CalendarUnit, str]] = ..., time_zone: _Optional[str] = ...) -> None: ...

class ReadStreamResponse(_message.Message):
    __slots__ = ("stream", "mode", "series", "source_point_count", "bucket_width", "next_page_token")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    SERIES_FIELD_NUMBER: _ClassVar[int]
    SOURCE_POINT_COUNT_FIELD_NUMBER: _ClassVar[int]
    BUCKET_WIDTH_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    stream: Stream
    mode: ReadMode
    series: _containers.RepeatedCompositeFieldContainer[ChannelSeries]
    source_point_count: int
    bucket_width: _duration_pb2.Duration
    next_page_token: str
    def __init__(self, stream: _Optional[_Union[Stream, _Mapping]] = ..., mode: _Optional[_Union[ReadMode, str]] = ..., series: _Optional[_Iterable[_Union[ChannelSeries, _Mapping]]] = ..., source_point_count: _Optional[int] = ..., bucket_width: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ChannelSeries(_message.Message):
    __slots__ = ("channel", "unit", "points", "buckets")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    BUCKETS_FIELD_NUMBER: _ClassVar[int]
    channel: str
    unit: str
    points: _containers.RepeatedCompositeFieldContainer[Point]
    buckets: _containers.RepeatedCompositeFieldContainer[Bucket]
    def __init__(self, channel: _Optional[str] = ..., unit: _Optional[str] = ..., points: _Optional[_Iterable[_Union[Point, _Mapping]]] = ..., buckets: _Optional[_Iterable[_Union[Bucket, _Mapping]]] = ...) -> None: ...

class Point(_message.Message):
    __slots__ = ("time", "double_value", "int_value", "bool_value", "string_value", "gap")
    TIME_FIELD_NUMBER: _ClassVar[int]
    DOUBLE_VALUE_FIELD_NUMBER: _ClassVar[int]
    INT_VALUE_FIELD_NUMBER: _ClassVar[int]
    BOOL_VALUE_FIELD_NUMBER: _ClassVar[int]
    STRING_VALUE_FIELD_NUMBER: _ClassVar[int]
    GAP_FIELD_NUMBER: _ClassVar[int]
    time: _timestamp_pb2.Timestamp
    double_value: float
    int_value: int
    bool_value: bool
    string_value: str
    gap: bool
    def __init__(self, time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., double_value: _Optional[float] = ..., int_value: _Optional[int] = ..., bool_value: _Optional[bool] = ..., string_value: _Optional[str] = ..., gap: _Optional[bool] = ...) -> None: ...

class Bucket(_message.Message):
    __slots__ = ("start_time", "end_time", "count", "min", "max", "first", "last", "mean", "min_time", "max_time")
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    FIRST_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    MEAN_FIELD_NUMBER: _ClassVar[int]
    MIN_TIME_FIELD_NUMBER: _ClassVar[int]
    MAX_TIME_FIELD_NUMBER: _ClassVar[int]
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    count: int
    min: float
    max: float
    first: float
    last: float
    mean: float
    min_time: _timestamp_pb2.Timestamp
    max_time: _timestamp_pb2.Timestamp
    def __init__(self, start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., count: _Optional[int] = ..., min: _Optional[float] = ..., max: _Optional[float] = ..., first: _Optional[float] = ..., last: _Optional[float] = ..., mean: _Optional[float] = ..., min_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., max_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Stream(_message.Message):
    __slots__ = ("device_id", "name", "kind", "value_type", "unit", "channels", "first_time", "last_time", "point_count", "nominal_rate_hz")
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    VALUE_TYPE_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    FIRST_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_TIME_FIELD_NUMBER: _ClassVar[int]
    POINT_COUNT_FIELD_NUMBER: _ClassVar[int]
    NOMINAL_RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    device_id: str
    name: str
    kind: StreamKind
    value_type: ValueType
    unit: str
    channels: _containers.RepeatedCompositeFieldContainer[Channel]
    first_time: _timestamp_pb2.Timestamp
    last_time: _timestamp_pb2.Timestamp
    point_count: int
    nominal_rate_hz: float
    def __init__(self, device_id: _Optional[str] = ..., name: _Optional[str] = ..., kind: _Optional[_Union[StreamKind, str]] = ..., value_type: _Optional[_Union[ValueType, str]] = ..., unit: _Optional[str] = ..., channels: _Optional[_Iterable[_Union[Channel, _Mapping]]] = ..., first_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., point_count: _Optional[int] = ..., nominal_rate_hz: _Optional[float] = ...) -> None: ...

class Channel(_message.Message):
    __slots__ = ("name", "unit")
    NAME_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    name: str
    unit: str
    def __init__(self, name: _Optional[str] = ..., unit: _Optional[str] = ...) -> None: ...

class ListEventsRequest(_message.Message):
    __slots__ = ("device_id", "start_time", "end_time", "page_size", "page_token")
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    device_id: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    page_size: int
    page_token: str
    def __init__(self, device_id: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListEventsResponse(_message.Message):
    __slots__ = ("events", "next_page_token")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[DeviceEvent]
    next_page_token: str
    def __init__(self, events: _Optional[_Iterable[_Union[DeviceEvent, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeviceEvent(_message.Message):
    __slots__ = ("time", "boot_id", "sequence", "status", "alert")
    TIME_FIELD_NUMBER: _ClassVar[int]
    BOOT_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ALERT_FIELD_NUMBER: _ClassVar[int]
    time: _timestamp_pb2.Timestamp
    boot_id: str
    sequence: int
    status: _telemetry_pb2.StatusEvent
    alert: _telemetry_pb2.AlertEvent
    def __init__(self, time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., boot_id: _Optional[str] = ..., sequence: _Optional[int] = ..., status: _Optional[_Union[_telemetry_pb2.StatusEvent, _Mapping]] = ..., alert: _Optional[_Union[_telemetry_pb2.AlertEvent, _Mapping]] = ...) -> None: ...
