"""The generated messages and gRPC stubs of the AETUS contract, as they are.

These are the very modules ``protoc`` generated (no copies), collected in one
import for notebooks and scripts::

    import grpc
    from aetus.sdk import stubs

    channel = grpc.insecure_channel("127.0.0.1:50051")
    reply = stubs.IngestServiceStub(channel).GetTime(stubs.GetTimeRequest())
"""

from aetus.device.v1 import device_service_pb2, device_service_pb2_grpc
from aetus.ingest.v1 import ingest_service_pb2, ingest_service_pb2_grpc
from aetus.query.v1 import query_service_pb2, query_service_pb2_grpc
from aetus.telemetry.v1 import telemetry_pb2

DeviceServiceStub = device_service_pb2_grpc.DeviceServiceStub
IngestServiceStub = ingest_service_pb2_grpc.IngestServiceStub
QueryServiceStub = query_service_pb2_grpc.QueryServiceStub

AlertEvent = telemetry_pb2.AlertEvent
Event = telemetry_pb2.Event
Metric = telemetry_pb2.Metric
MetricColumns = telemetry_pb2.MetricColumns
MetricSet = telemetry_pb2.MetricSet
SignalChannel = telemetry_pb2.SignalChannel
SignalFrame = telemetry_pb2.SignalFrame
StatusEvent = telemetry_pb2.StatusEvent

GetTimeRequest = ingest_service_pb2.GetTimeRequest
IngestEventsRequest = ingest_service_pb2.IngestEventsRequest
StreamEventsRequest = ingest_service_pb2.StreamEventsRequest
ListStreamsRequest = query_service_pb2.ListStreamsRequest
ReadStreamRequest = query_service_pb2.ReadStreamRequest

__all__ = [
    "AlertEvent",
    "DeviceServiceStub",
    "Event",
    "GetTimeRequest",
    "IngestEventsRequest",
    "IngestServiceStub",
    "ListStreamsRequest",
    "Metric",
    "MetricColumns",
    "MetricSet",
    "QueryServiceStub",
    "ReadStreamRequest",
    "SignalChannel",
    "SignalFrame",
    "StatusEvent",
    "StreamEventsRequest",
    "device_service_pb2",
    "device_service_pb2_grpc",
    "ingest_service_pb2",
    "ingest_service_pb2_grpc",
    "query_service_pb2",
    "query_service_pb2_grpc",
    "telemetry_pb2",
]
