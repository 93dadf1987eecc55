"""Request bodies posted over HTTP: protobuf or JSON, decoded by the server's rules.

JSON is parsed with stricter rules than ``google.protobuf.json_format`` alone
applies: bare ``NaN``/``Infinity`` tokens and duplicate keys are rejected,
doubles accept only JSON numbers, numeric strings and the exact strings
``"NaN"``, ``"Infinity"`` and ``"-Infinity"``, timestamps must carry a
timezone offset, and enums must name or number a declared value. Every error
names the field path in proto field names, for example
``events[0].time: timezone offset required``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import datetime
from typing import Any

import grpc
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import DecodeError, Message

from aetus.ingest.v1 import ingest_service_pb2
from aetus.server.checks import enum_choices
from aetus.server.errors import ApiError

PROTOBUF = "application/x-protobuf"
JSON = "application/json"

_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_INTEGER = re.compile(r"-?[0-9]+")
_FLOAT_SPECIALS = ("NaN", "Infinity", "-Infinity")
_TIMESTAMP = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
    r"([Zz]|[+-]\d{2}:\d{2})?"
)
_FLOAT32_MAX = 3.4028234663852886e38
_INT_RANGES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1, "int32"),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1, "sint32"),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1, "sfixed32"),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1, "uint32"),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1, "fixed32"),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1, "int64"),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1, "sint64"),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1, "sfixed64"),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1, "uint64"),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1, "fixed64"),
}


def media_type(content_type: str) -> str:
    """Return the media type of a Content-Type value, lower case, without parameters."""
    return content_type.split(";", 1)[0].strip().lower()


def decode_ingest_request(
    content_type: str, data: bytes, max_bytes: int
) -> tuple[ingest_service_pb2.IngestEventsRequest, str]:
    """Decode a posted IngestEventsRequest and return it with its media type.

    Raises:
        ApiError: INVALID_ARGUMENT for an unsupported content type or a body
            that does not decode, RESOURCE_EXHAUSTED for a body over
            ``max_bytes``.
    """
    kind = media_type(content_type)
    if kind not in (PROTOBUF, JSON):
        raise ApiError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"content type {content_type!r} is not supported; send {PROTOBUF} "
            f"or {JSON}",
            "UNSUPPORTED_CONTENT_TYPE",
            {"content_type": content_type},
            "content_type",
        )
    if len(data) > max_bytes:
        raise ApiError(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            f"request body of {len(data)} bytes exceeds the limit of {max_bytes} "
            "bytes (AETUS_MAX_REQUEST_BYTES); split the batch",
            "REQUEST_TOO_LARGE",
            {"size_bytes": str(len(data)), "limit_bytes": str(max_bytes)},
        )
    if kind == PROTOBUF:
        return _decode_protobuf(data), kind
    request = ingest_service_pb2.IngestEventsRequest()
    cleaned = _clean_json(data, request)
    _check_sequences(cleaned)
    _fill(cleaned, request)
    return request, kind


def encode_message(kind: str, message: Message) -> bytes:
    """Encode a reply in the request's media type (``PROTOBUF`` or ``JSON``)."""
    if kind == PROTOBUF:
        return bytes(message.SerializeToString())
    as_dict = json_format.MessageToDict(
        message, always_print_fields_with_no_presence=True
    )
    # allow_nan=False: the JSON mapping writes NaN as the string "NaN", so a
    # bare NaN token here would be a bug.
    return json.dumps(as_dict, separators=(",", ":"), allow_nan=False).encode()


def parse_json(data: bytes, message: Message) -> None:
    """Parse JSON ``data`` into ``message`` with the strict rules of this module.

    Raises:
        ApiError: INVALID_ARGUMENT naming the byte offset or field path and
            the fix.
    """
    _fill(_clean_json(data, message), message)


def _clean_json(data: bytes, message: Message) -> dict[str, Any]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _json_error(
            f"the body is not valid UTF-8 at byte {exc.start}; send UTF-8 JSON"
        ) from None
    return _message(_load_json(text), _descriptor(message), "")


def _check_sequences(cleaned: dict[str, Any]) -> None:
    # Protobuf's JSON mapping reads a missing number as 0, so a second event
    # of the boot without "sequence" would be dropped as a retry of the first.
    for index, event in enumerate(cleaned.get("events", [])):
        if "sequence" not in event:
            raise _field_error(
                f"events[{index}].sequence",
                "missing; number the events of each boot from 0 (0, 1, 2, ...) "
                "so that the server recognises a retried event, because events "
                "of one boot with the same sequence are stored once",
            )


def _fill(cleaned: dict[str, Any], message: Message) -> None:
    try:
        json_format.ParseDict(cleaned, message, ignore_unknown_fields=False)
    except json_format.ParseError as exc:
        # _message checks what json_format checks, so this is a backstop.
        raise _json_error(
            f"the JSON does not match {message.DESCRIPTOR.name}: {exc}; compare "
            "it with the message's JSON mapping"
        ) from None


class _BareConstant(ValueError):
    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.token = token


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _load_json(text: str) -> Any:
    try:
        return json.loads(
            text, parse_constant=_reject_constant, object_pairs_hook=_unique_keys
        )
    except json.JSONDecodeError as exc:
        offset = len(text[: exc.pos].encode("utf-8"))
        raise _json_error(
            f"invalid JSON at byte {offset} (line {exc.lineno}, column "
            f"{exc.colno}): {exc.msg}",
            byte_offset=offset,
        ) from None
    except _BareConstant as exc:
        offset = _bare_token_offset(text, exc.token)
        raise _json_error(
            f"invalid JSON at byte {offset}: the bare token {exc.token} is not "
            f'JSON; send the string "{exc.token}", or null for a missing value',
            byte_offset=offset,
        ) from None
    except _DuplicateKey as exc:
        raise _json_error(
            f"duplicate key {exc.key!r} in one JSON object; send each field once"
        ) from None


def _reject_constant(token: str) -> Any:
    raise _BareConstant(token)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def _bare_token_offset(text: str, token: str) -> int:
    """Return the byte offset of the first ``token`` outside a JSON string."""
    in_string = False
    escaped = False
    for position, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif text.startswith(token, position):
            return len(text[:position].encode("utf-8"))
    return -1


def _descriptor(message: Message) -> Descriptor:
    descriptor = message.DESCRIPTOR
    # The stubs type the upb runtime's descriptor apart from Descriptor, but
    # protobuf's descriptor metaclass makes it pass this check.
    if not isinstance(descriptor, Descriptor):
        raise TypeError(f"{type(descriptor).__name__} is not a message descriptor")
    return descriptor


def _message(value: Any, descriptor: Descriptor, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _field_error(
            path or "body", f"expected a JSON object, got {_json_type(value)}"
        )
    cleaned: dict[str, Any] = {}
    oneofs: dict[str, str] = {}
    for key, item in value.items():
        field = _field_by_json_name(descriptor, key) or descriptor.fields_by_name.get(
            key
        )
        if field is None:
            known = ", ".join(f.name for f in descriptor.fields)
            raise _field_error(
                _join(path, key),
                f"unknown field of {descriptor.name}; the fields are {known}",
            )
        field_path = _join(path, field.name)
        if field.name in cleaned:
            raise _field_error(field_path, "given twice, as JSON name and proto name")
        if item is None:
            continue
        oneof = field.containing_oneof
        if oneof is not None:
            other = oneofs.setdefault(oneof.name, field.name)
            if other != field.name:
                raise _field_error(
                    path or descriptor.name,
                    f"{oneof.name} has both {other} and {field.name}; set exactly one",
                )
        cleaned[field.name] = _field(item, field, field_path)
    return cleaned


def _field_by_json_name(descriptor: Descriptor, key: str) -> FieldDescriptor | None:
    for field in descriptor.fields:
        if field.json_name == key:
            return field
    return None


def _field(value: Any, field: FieldDescriptor, path: str) -> Any:
    if field.is_repeated:
        if not isinstance(value, list):
            raise _field_error(path, f"expected a JSON array, got {_json_type(value)}")
        return [_single(item, field, f"{path}[{i}]") for i, item in enumerate(value)]
    return _single(value, field, path)


def _single(value: Any, field: FieldDescriptor, path: str) -> Any:
    kind = field.type
    if kind == FieldDescriptor.TYPE_MESSAGE:
        message_type = field.message_type
        assert message_type is not None  # set on every message field
        full_name = message_type.full_name
        if full_name == "google.protobuf.Timestamp":
            return _timestamp(value, path)
        if full_name.startswith("google.protobuf."):
            return value  # other well-known types keep json_format's rules
        return _message(value, message_type, path)
    if kind == FieldDescriptor.TYPE_ENUM:
        enum_type = field.enum_type
        assert enum_type is not None  # set on every enum field
        return _enum(value, enum_type, path)
    if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return _float(value, kind == FieldDescriptor.TYPE_FLOAT, path)
    if kind in _INT_RANGES:
        return _integer(value, kind, path)
    if kind == FieldDescriptor.TYPE_BOOL:
        if not isinstance(value, bool):
            raise _field_error(path, f"expected true or false, got {_json_type(value)}")
        return value
    if not isinstance(value, str):
        raise _field_error(path, f"expected a JSON string, got {_json_type(value)}")
    if kind == FieldDescriptor.TYPE_BYTES:
        _check_base64(value, path)
    return value


def _float(value: Any, single: bool, path: str) -> Any:
    if isinstance(value, str):
        if value in _FLOAT_SPECIALS:
            return value
        if not _NUMBER.fullmatch(value):
            raise _field_error(
                path,
                f"invalid number {value!r}; send a JSON number or one of the "
                'strings "NaN", "Infinity" and "-Infinity"',
                value=value,
            )
        value = float(value)
    elif isinstance(value, bool) or not isinstance(value, int | float):
        raise _field_error(path, f"expected a number, got {_json_type(value)}")
    limit = _FLOAT32_MAX if single else float("inf")
    if abs(value) >= limit:
        # json.loads reads a number literal beyond the double range as inf.
        shown = "the number" if abs(value) == float("inf") else repr(value)
        raise _field_error(
            path,
            f"{shown} is beyond the range of a {'float' if single else 'double'}; "
            'send "Infinity" or "-Infinity" as a string if you mean infinity',
        )
    return value


def _integer(value: Any, kind: int, path: str) -> int:
    low, high, name = _INT_RANGES[kind]
    if isinstance(value, str) and _INTEGER.fullmatch(value):
        number = int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    else:
        raise _field_error(
            path,
            f"expected an integer, got {_json_type(value)} {value!r}"[:200],
        )
    if not low <= number <= high:
        raise _field_error(
            path,
            f"{number} is out of range for {name} ({low} to {high})",
            value=number,
        )
    return number


def _enum(value: Any, descriptor: EnumDescriptor, path: str) -> Any:
    if isinstance(value, str):
        if value not in descriptor.values_by_name:
            names = ", ".join(v.name for v in descriptor.values)
            raise _field_error(
                path,
                f"invalid enum value {value!r} for {descriptor.name}; use one of "
                f"{names}",
                value=value,
            )
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        if value not in descriptor.values_by_number:
            raise _field_error(
                path,
                f"{value} is not a declared {descriptor.name} value; use "
                f"{enum_choices(descriptor)}",
                value=value,
            )
        return value
    raise _field_error(
        path, f"expected an enum name or number, got {_json_type(value)}"
    )


def _timestamp(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise _field_error(
            path, f"expected an RFC 3339 string, got {_json_type(value)}"
        )
    match = _TIMESTAMP.fullmatch(value)
    if match is None:
        raise _field_error(
            path,
            f"invalid timestamp {value!r}; use RFC 3339 such as "
            '"2024-05-01T12:00:00Z" or "2024-05-01T14:00:00.5+02:00"',
            value=value,
        )
    year, month, day, hour, minute, second, fraction, offset = match.groups()

    if offset is None:
        raise _field_error(path, "timezone offset required", value=value)
    fraction = fraction or ""
    if len(fraction) > 9:
        raise _field_error(
            path,
            f"{len(fraction)} fractional digits in {value!r}; send at most 9",
            value=value,
        )
    try:
        datetime(int(year), int(month), int(day), int(hour), int(minute), int(second))
    except ValueError as exc:
        raise _field_error(
            path, f"invalid timestamp {value!r}: {exc}", value=value
        ) from None

    # json_format accepts only an upper-case T and Z, which RFC 3339 does not
    # require, so the time is passed on in that form.
    offset = "Z" if offset in ("Z", "z") else offset
    digits = f".{fraction}" if fraction else ""
    return f"{year}-{month}-{day}T{hour}:{minute}:{second}{digits}{offset}"


def _check_base64(value: str, path: str) -> None:
    padded = value + "=" * (-len(value) % 4)
    try:
        base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except binascii.Error:
        raise _field_error(
            path, "invalid base64; send the bytes base64-encoded"
        ) from None


def _decode_protobuf(data: bytes) -> ingest_service_pb2.IngestEventsRequest:
    request = ingest_service_pb2.IngestEventsRequest()
    try:
        request.ParseFromString(data)
    except DecodeError as exc:
        hint = ""
        framed = len(data) >= 5 and data[0] in (0, 1)
        if framed and int.from_bytes(data[1:5], "big") == len(data) - 5:
            hint = " The body starts with a 5-byte gRPC frame header; remove it."
        raise ApiError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"the body is not an encoded IngestEventsRequest ({exc}); send the "
            f"serialised message as {PROTOBUF}.{hint}",
            "INVALID_PROTOBUF",
        ) from None
    return request


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _field_error(path: str, rule: str, **values: object) -> ApiError:
    metadata = {"field": path}
    metadata.update({key: str(value)[:200] for key, value in values.items()})
    return ApiError(
        grpc.StatusCode.INVALID_ARGUMENT,
        f"{path}: {rule}",
        "INVALID_JSON",
        metadata,
        path,
    )


def _json_error(message: str, **values: object) -> ApiError:
    return ApiError(
        grpc.StatusCode.INVALID_ARGUMENT,
        message,
        "INVALID_JSON",
        {key: str(value) for key, value in values.items()},
    )
