import datetime

from aetus.telemetry.v1 import telemetry_pb2 as _telemetry_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.api import httpbody_pb2 as _httpbody_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.rpc import status_pb2 as _status_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class IngestEventsRequest(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[_telemetry_pb2.Event]
    def __init__(self, events: _Optional[_Iterable[_Union[_telemetry_pb2.Event, _Mapping]]] = ...) -> None: ...

class IngestEventsResponse(_message.Message):
    __slots__ = ("accepted_count", "duplicate_count", "commit_time")
    ACCEPTED_COUNT_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_COUNT_FIELD_NUMBER: _ClassVar[int]
    COMMIT_TIME_FIELD_NUMBER: _ClassVar[int]
    accepted_count: int
    duplicate_count: int
    commit_time: _timestamp_pb2.Timestamp
    def __init__(self, accepted_count: _Optional[int] = ..., duplicate_count: _Optional[int] = ..., commit_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class StreamEventsRequest(_message.Message):
    __slots__ = ("batch_sequence", "events")
    BATCH_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    batch_sequence: int
    events: _containers.RepeatedCompositeFieldContainer[_telemetry_pb2.Event]
    def __init__(self, batch_sequence: _Optional[int] = ..., events: _Optional[_Iterable[_Union[_telemetry_pb2.Event, _Mapping]]] = ...) -> None: ...

class StreamEventsResponse(_message.Message):
    __slots__ = ("acked_batch_sequence", "accepted_count", "duplicate_count", "rejections")
    ACKED_BATCH_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_COUNT_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_COUNT_FIELD_NUMBER: _ClassVar[int]
    REJECTIONS_FIELD_NUMBER: _ClassVar[int]
    acked_batch_sequence: int
    accepted_count: int
    duplicate_count: int
    rejections: _containers.RepeatedCompositeFieldContainer[BatchRejection]
    def __init__(self, acked_batch_sequence: _Optional[int] = ..., accepted_count: _Optional[int] = ..., duplicate_count: _Optional[int] = ..., rejections: _Optional[_Iterable[_Union[BatchRejection, _Mapping]]] = ...) -> None: ...

class BatchRejection(_message.Message):
    __slots__ = ("batch_sequence", "status")
    BATCH_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    batch_sequence: int
    status: _status_pb2.Status
    def __init__(self, batch_sequence: _Optional[int] = ..., status: _Optional[_Union[_status_pb2.Status, _Mapping]] = ...) -> None: ...

class GetTimeRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetTimeResponse(_message.Message):
    __slots__ = ("server_time", "unix_time_ns", "valid_after_time")
    SERVER_TIME_FIELD_NUMBER: _ClassVar[int]
    UNIX_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    VALID_AFTER_TIME_FIELD_NUMBER: _ClassVar[int]
    server_time: _timestamp_pb2.Timestamp
    unix_time_ns: int
    valid_after_time: _timestamp_pb2.Timestamp
    def __init__(self, server_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., unix_time_ns: _Optional[int] = ..., valid_after_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
