"""Load generators, run in a worker process apart from the server under test.

Each entry point takes serialised requests built beforehand, sends them over
real sockets, checks every reply, and returns a plain dict with the wall time
and the work done. Requests go out as bytes (no serialisation in the timed part), so
the client's share of the two cores stays small.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc

from aetus.ingest.v1 import ingest_service_pb2

STREAM_METHOD = "/aetus.ingest.v1.IngestService/StreamEvents"
UNARY_METHOD = "/aetus.ingest.v1.IngestService/IngestEvents"
HTTP_PATH = "/v1/ingest"
_MAX_MESSAGE_BYTES = 64 * 1_048_576
_CALL_TIMEOUT_S = 120.0


class LoadError(Exception):
    """The server rejected or lost part of the load; the figures are invalid."""


def _identity(data: bytes) -> bytes:
    return data


def _channel(address: str) -> grpc.aio.Channel:
    # A local subchannel pool gives every channel its own TCP connection, as
    # separate devices would have.
    return grpc.aio.insecure_channel(
        address,
        options=[
            ("grpc.use_local_subchannel_pool", 1),
            ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
        ],
    )


def run_stream(
    address: str, token: str, requests: list[bytes], events: int
) -> dict[str, Any]:
    """Send ``requests`` (StreamEventsRequest bytes) over one StreamEvents call.

    Returns:
        ``elapsed_s`` from opening the stream to the ack of the last batch,
        ``accepted`` events and ``acks`` received.

    Raises:
        LoadError: A batch was rejected or fewer than ``events`` were stored.
    """
    return asyncio.run(_stream(address, token, requests, events))


async def _stream(
    address: str, token: str, requests: list[bytes], events: int
) -> dict[str, Any]:
    async with _channel(address) as channel:
        await channel.channel_ready()
        call_stream = channel.stream_stream(
            STREAM_METHOD,
            request_serializer=_identity,
            response_deserializer=ingest_service_pb2.StreamEventsResponse.FromString,
        )

        async def produce() -> AsyncIterator[bytes]:
            for request in requests:
                yield request

        accepted = acks = 0
        start = time.perf_counter()
        call = call_stream(
            produce(),
            metadata=(("authorization", f"Bearer {token}"),),
            timeout=_CALL_TIMEOUT_S,
        )
        async for response in call:
            acks += 1
            accepted += response.accepted_count + response.duplicate_count
            if response.rejections:
                raise LoadError(f"batch rejected: {response.rejections[0]}")
        elapsed = time.perf_counter() - start
    if accepted != events:
        raise LoadError(f"the stream acknowledged {accepted} of {events} events")
    return {"elapsed_s": elapsed, "accepted": accepted, "acks": acks}


def run_unary(
    address: str, tokens: list[str], requests: list[list[bytes]]
) -> dict[str, Any]:
    """Send each client's requests as IngestEvents calls, clients concurrently.

    Client ``i`` uses ``tokens[i]`` on its own channel and sends
    ``requests[i]`` one after another.

    Returns:
        ``elapsed_s`` from the first call to the last reply, and ``requests``.

    Raises:
        LoadError: A call failed or a reply did not accept its event.
    """
    return asyncio.run(_unary(address, tokens, requests))


async def _unary(
    address: str, tokens: list[str], requests: list[list[bytes]]
) -> dict[str, Any]:
    channels = [_channel(address) for _ in tokens]
    try:
        await asyncio.gather(*(channel.channel_ready() for channel in channels))
        start = time.perf_counter()
        await asyncio.gather(
            *(
                _unary_client(channel, token, posts)
                for channel, token, posts in zip(
                    channels, tokens, requests, strict=True
                )
            )
        )
        elapsed = time.perf_counter() - start
    finally:
        await asyncio.gather(*(channel.close() for channel in channels))
    return {"elapsed_s": elapsed, "requests": sum(map(len, requests))}


async def _unary_client(
    channel: grpc.aio.Channel, token: str, posts: list[bytes]
) -> None:
    call = channel.unary_unary(
        UNARY_METHOD,
        request_serializer=_identity,
        response_deserializer=ingest_service_pb2.IngestEventsResponse.FromString,
    )
    metadata = (("authorization", f"Bearer {token}"),)
    for post in posts:
        response = await call(post, metadata=metadata, timeout=_CALL_TIMEOUT_S)
        _check_one_event(response)


def _check_one_event(response: ingest_service_pb2.IngestEventsResponse) -> None:
    if response.accepted_count + response.duplicate_count != 1:
        raise LoadError(f"a one-event request got the reply {response}")


def run_http(
    address: str, tokens: list[str], requests: list[list[bytes]]
) -> dict[str, Any]:
    """POST each client's requests as application/x-protobuf to /v1/ingest.

    Every client keeps one HTTP/1.1 keep-alive connection open to ``address``
    (the Envoy listener) and sends its posts one after another.

    Returns:
        ``elapsed_s`` from the first post to the last reply, and ``requests``.

    Raises:
        LoadError: A post failed or a reply did not accept its event.
    """
    return asyncio.run(_http(address, tokens, requests))


async def _http(
    address: str, tokens: list[str], requests: list[list[bytes]]
) -> dict[str, Any]:
    host, port = address.rsplit(":", 1)
    connections = [await asyncio.open_connection(host, int(port)) for _ in tokens]
    try:
        start = time.perf_counter()
        await asyncio.gather(
            *(
                _http_client(reader, writer, address, token, posts)
                for (reader, writer), token, posts in zip(
                    connections, tokens, requests, strict=True
                )
            )
        )
        elapsed = time.perf_counter() - start
    finally:
        for _, writer in connections:
            writer.close()
    return {"elapsed_s": elapsed, "requests": sum(map(len, requests))}


async def _http_client(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    address: str,
    token: str,
    posts: list[bytes],
) -> None:
    head = (
        f"POST {HTTP_PATH} HTTP/1.1\r\nHost: {address}\r\n"
        "Content-Type: application/x-protobuf\r\n"
        f"Authorization: Bearer {token}\r\nContent-Length: "
    ).encode("ascii")
    for post in posts:
        writer.write(head + str(len(post)).encode("ascii") + b"\r\n\r\n" + post)
        status, headers, body = await _read_response(reader)
        grpc_status = headers.get("grpc-status", "0")
        if status != 200 or grpc_status != "0":
            raise LoadError(
                f"POST {HTTP_PATH} returned HTTP {status}, grpc-status "
                f"{grpc_status}: {body[:300]!r}"
            )
        _check_one_event(ingest_service_pb2.IngestEventsResponse.FromString(body))


async def _read_response(
    reader: asyncio.StreamReader,
) -> tuple[int, dict[str, str], bytes]:
    """Read one HTTP/1.1 response with a Content-Length or chunked body."""
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split(" ", 2)[1])
    headers = {}
    for line in lines:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        return status, headers, await _read_chunked(reader)
    length = int(headers.get("content-length", "0"))
    return status, headers, await reader.readexactly(length)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        chunk = await reader.readexactly(size + 2)
        if size == 0:
            return b"".join(chunks)
        chunks.append(chunk[:-2])
