import datetime

from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TimeSource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TIME_SOURCE_UNSPECIFIED: _ClassVar[TimeSource]
    TIME_SOURCE_SYNCED: _ClassVar[TimeSource]
    TIME_SOURCE_UPTIME: _ClassVar[TimeSource]

class SampleEncoding(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SAMPLE_ENCODING_UNSPECIFIED: _ClassVar[SampleEncoding]
    SAMPLE_ENCODING_FLOAT32_LE: _ClassVar[SampleEncoding]
    SAMPLE_ENCODING_INT16_LE: _ClassVar[SampleEncoding]
    SAMPLE_ENCODING_UINT16_LE: _ClassVar[SampleEncoding]
    SAMPLE_ENCODING_INT32_LE: _ClassVar[SampleEncoding]

class SampleLayout(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SAMPLE_LAYOUT_UNSPECIFIED: _ClassVar[SampleLayout]
    SAMPLE_LAYOUT_INTERLEAVED: _ClassVar[SampleLayout]
    SAMPLE_LAYOUT_PLANAR: _ClassVar[SampleLayout]

class DeviceState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DEVICE_STATE_UNSPECIFIED: _ClassVar[DeviceState]
    DEVICE_STATE_ONLINE: _ClassVar[DeviceState]
    DEVICE_STATE_DEGRADED: _ClassVar[DeviceState]
    DEVICE_STATE_OFFLINE: _ClassVar[DeviceState]

class Severity(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SEVERITY_UNSPECIFIED: _ClassVar[Severity]
    SEVERITY_INFO: _ClassVar[Severity]
    SEVERITY_WARNING: _ClassVar[Severity]
    SEVERITY_ERROR: _ClassVar[Severity]
    SEVERITY_CRITICAL: _ClassVar[Severity]
TIME_SOURCE_UNSPECIFIED: TimeSource
TIME_SOURCE_SYNCED: TimeSource
TIME_SOURCE_UPTIME: TimeSource
SAMPLE_ENCODING_UNSPECIFIED: SampleEncoding
SAMPLE_ENCODING_FLOAT32_LE: SampleEncoding
SAMPLE_ENCODING_INT16_LE: SampleEncoding
SAMPLE_ENCODING_UINT16_LE: SampleEncoding
SAMPLE_ENCODING_INT32_LE: SampleEncoding
SAMPLE_LAYOUT_UNSPECIFIED: SampleLayout
SAMPLE_LAYOUT_INTERLEAVED: SampleLayout
SAMPLE_LAYOUT_PLANAR: SampleLayout
DEVICE_STATE_UNSPECIFIED: DeviceState
DEVICE_STATE_ONLINE: DeviceState
DEVICE_STATE_DEGRADED: DeviceState
DEVICE_STATE_OFFLINE: DeviceState
SEVERITY_UNSPECIFIED: Severity
SEVERITY_INFO: Severity
SEVERITY_WARNING: Severity
SEVERITY_ERROR: Severity
SEVERITY_CRITICAL: Severity

class Event(_message.Message):
    __slots__ = ("device_id", "boot_id", "sequence", "uptime_ms", "time", "time_source", "firmware_version", "metrics", "signal_frame", "status", "alert", "metric_columns")
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    BOOT_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    UPTIME_MS_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    TIME_SOURCE_FIELD_NUMBER: _ClassVar[int]
    FIRMWARE_VERSION_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_FRAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ALERT_FIELD_NUMBER: _ClassVar[int]
    METRIC_COLUMNS_FIELD_NUMBER: _ClassVar[int]
    device_id: str
    boot_id: str
    sequence: int
    uptime_ms: int
    time: _timestamp_pb2.Timestamp
    time_source: TimeSource
    firmware_version: int
    metrics: MetricSet
    signal_frame: SignalFrame
    status: StatusEvent
    alert: AlertEvent
    metric_columns: MetricColumns
    def __init__(self, device_id: _Optional[str] = ..., boot_id: _Optional[str] = ..., sequence: _Optional[int] = ..., uptime_ms: _Optional[int] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., time_source: _Optional[_Union[TimeSource, str]] = ..., firmware_version: _Optional[int] = ..., metrics: _Optional[_Union[MetricSet, _Mapping]] = ..., signal_frame: _Optional[_Union[SignalFrame, _Mapping]] = ..., status: _Optional[_Union[StatusEvent, _Mapping]] = ..., alert: _Optional[_Union[AlertEvent, _Mapping]] = ..., metric_columns: _Optional[_Union[MetricColumns, _Mapping]] = ...) -> None: ...

class MetricSet(_message.Message):
    __slots__ = ("metrics",)
    METRICS_FIELD_NUMBER: _ClassVar[int]
    metrics: _containers.RepeatedCompositeFieldContainer[Metric]
    def __init__(self, metrics: _Optional[_Iterable[_Union[Metric, _Mapping]]] = ...) -> None: ...

class Metric(_message.Message):
    __slots__ = ("name", "unit", "double_value", "int_value", "bool_value", "string_value")
    NAME_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    DOUBLE_VALUE_FIELD_NUMBER: _ClassVar[int]
    INT_VALUE_FIELD_NUMBER: _ClassVar[int]
    BOOL_VALUE_FIELD_NUMBER: _ClassVar[int]
    STRING_VALUE_FIELD_NUMBER: _ClassVar[int]
    name: str
    unit: str
    double_value: float
    int_value: int
    bool_value: bool
    string_value: str
    def __init__(self, name: _Optional[str] = ..., unit: _Optional[str] = ..., double_value: _Optional[float] = ..., int_value: _Optional[int] = ..., bool_value: _Optional[bool] = ..., string_value: _Optional[str] = ...) -> None: ...

class SignalFrame(_message.Message):
    __slots__ = ("stream", "sample_interval_ns", "sample_count", "encoding", "layout", "channels", "samples")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_INTERVAL_NS_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_COUNT_FIELD_NUMBER: _ClassVar[int]
    ENCODING_FIELD_NUMBER: _ClassVar[int]
    LAYOUT_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    stream: str
    sample_interval_ns: int
    sample_count: int
    encoding: SampleEncoding
    layout: SampleLayout
    channels: _containers.RepeatedCompositeFieldContainer[SignalChannel]
    samples: bytes
    def __init__(self, stream: _Optional[str] = ..., sample_interval_ns: _Optional[int] = ..., sample_count: _Optional[int] = ..., encoding: _Optional[_Union[SampleEncoding, str]] = ..., layout: _Optional[_Union[SampleLayout, str]] = ..., channels: _Optional[_Iterable[_Union[SignalChannel, _Mapping]]] = ..., samples: _Optional[bytes] = ...) -> None: ...

class SignalChannel(_message.Message):
    __slots__ = ("name", "unit", "scale", "offset")
    NAME_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    SCALE_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    name: str
    unit: str
    scale: float
    offset: float
    def __init__(self, name: _Optional[str] = ..., unit: _Optional[str] = ..., scale: _Optional[float] = ..., offset: _Optional[float] = ...) -> None: ...

class StatusEvent(_message.Message):
    __slots__ = ("state", "rssi_dbm", "free_heap_bytes", "reset_reason", "message")
    STATE_FIELD_NUMBER: _ClassVar[int]
    RSSI_DBM_FIELD_NUMBER: _ClassVar[int]
    FREE_HEAP_BYTES_FIELD_NUMBER: _ClassVar[int]
    RESET_REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    state: DeviceState
    rssi_dbm: int
    free_heap_bytes: int
    reset_reason: str
    message: str
    def __init__(self, state: _Optional[_Union[DeviceState, str]] = ..., rssi_dbm: _Optional[int] = ..., free_heap_bytes: _Optional[int] = ..., reset_reason: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class AlertEvent(_message.Message):
    __slots__ = ("code", "severity", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: str
    severity: Severity
    message: str
    def __init__(self, code: _Optional[str] = ..., severity: _Optional[_Union[Severity, str]] = ..., message: _Optional[str] = ...) -> None: ...

class MetricColumns(_message.Message):
    __slots__ = ("names", "units", "name_indices", "time_offsets_ns", "values")
    NAMES_FIELD_NUMBER: _ClassVar[int]
    UNITS_FIELD_NUMBER: _ClassVar[int]
    NAME_INDICES_FIELD_NUMBER: _ClassVar[int]
    TIME_OFFSETS_NS_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    names: _containers.RepeatedScalarFieldContainer[str]
    units: _containers.RepeatedScalarFieldContainer[str]
    name_indices: _containers.RepeatedScalarFieldContainer[int]
    time_offsets_ns: _containers.RepeatedScalarFieldContainer[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, names: _Optional[_Iterable[str]] = ..., units: _Optional[_Iterable[str]] = ..., name_indices: _Optional[_Iterable[int]] = ..., time_offsets_ns: _Optional[_Iterable[int]] = ..., values: _Optional[_Iterable[float]] = ...) -> None: ...
