"""Conversions between protobuf well-known types and Python values."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from typing import Any, overload

from google.protobuf import duration_pb2, struct_pb2, timestamp_pb2


def struct_to_dict(message: struct_pb2.Struct | None) -> dict[str, Any]:
    """Struct → dict; whole numbers come back as int, not float."""
    if message is None:
        return {}
    return {key: _from_value(value) for key, value in message.fields.items()}


def _from_value(value: struct_pb2.Value) -> Any:
    # A direct walk: json_format.MessageToDict is several times slower on hot paths.
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return value.string_value
    if kind == "number_value":
        number = value.number_value
        return int(number) if number.is_integer() and abs(number) < 2**53 else number
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return {k: _from_value(v) for k, v in value.struct_value.fields.items()}
    if kind == "list_value":
        return [_from_value(v) for v in value.list_value.values]
    return None


def not_json_numbers(value: Any, field: str) -> list[tuple[str, str]]:
    """Where `value` (a Struct as a dict) holds NaN or Infinity: a Struct can carry
    them, JSON cannot, so once stored they break every JSON reader of it (the
    gateway answered 500 for a whole page of runs)."""
    if isinstance(value, float) and not math.isfinite(value):
        return [(field, f"{value} is not a JSON number")]
    if isinstance(value, dict):
        return [v for k, item in value.items() for v in not_json_numbers(item, f"{field}.{k}")]
    if isinstance(value, list):
        return [v for i, item in enumerate(value)
                for v in not_json_numbers(item, f"{field}[{i}]")]
    return []


# The ranges google.protobuf.Duration and Timestamp define (0001-01-01 to 9999-12-31,
# ±10,000 years): a message outside them is accepted on the wire and fails later.
_MAX_DURATION_SECONDS = 315_576_000_000
_MIN_TIMESTAMP, _MAX_TIMESTAMP = -62_135_596_800, 253_402_300_799


def duration_problems(message: duration_pb2.Duration, field: str) -> list[tuple[str, str]]:
    """Why `message` is not a valid Duration: out of range, nanos of a second or
    more, or seconds and nanos of opposite signs."""
    s, n = message.seconds, message.nanos
    if abs(s) > _MAX_DURATION_SECONDS or abs(n) >= 1_000_000_000 \
            or (s and n and (s < 0) != (n < 0)):
        return [(field, "is not a valid duration (at most ±10,000 years, nanos below a "
                        "second, seconds and nanos of one sign)")]
    return []


def timestamp_problems(message: timestamp_pb2.Timestamp, field: str) -> list[tuple[str, str]]:
    """Why `message` is not a valid Timestamp (years 1 to 9999, nanos below a second)."""
    if not _MIN_TIMESTAMP <= message.seconds <= _MAX_TIMESTAMP \
            or not 0 <= message.nanos < 1_000_000_000:
        return [(field, "is not a valid time (years 1 to 9999)")]
    return []


def require_json_numbers(value: Any, field: str) -> None:
    """Raises INVALID_ARGUMENT naming every NaN or Infinity in `value` (see not_json_numbers)."""
    problems = not_json_numbers(value, field)
    if problems:
        from ._errors import InvalidArgument

        raise InvalidArgument(f"{field} holds numbers JSON cannot: "
                              + "; ".join(f"{f}: {d}" for f, d in problems),
                              violations=problems)


def check_enum(enum: Any, value: int, field: str) -> int:
    """`value` if `enum` (a generated EnumTypeWrapper) names it; else INVALID_ARGUMENT
    (protobuf enums are open: a caller may send any number)."""
    if value not in enum.values():
        from ._errors import InvalidArgument

        raise InvalidArgument(f"{field} {value} is not one of {', '.join(enum.keys())}",
                              violations=[(field, f"{value} names nothing")])
    return value


def dict_to_struct(value: dict[str, Any] | None) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    if value:
        message.update(value)
    return message


def seconds_to_duration(seconds: float | None) -> duration_pb2.Duration:
    if not seconds:
        return duration_pb2.Duration()
    nanos = int(seconds * 1e9)
    if nanos < 0:  # seconds and nanos share the sign; FromNanoseconds knows how
        message = duration_pb2.Duration()
        message.FromNanoseconds(nanos)
        return message
    # Set directly: FromNanoseconds normalizes in Python, several times slower.
    return duration_pb2.Duration(seconds=nanos // 1_000_000_000, nanos=nanos % 1_000_000_000)


def duration_to_seconds(message: duration_pb2.Duration | None) -> float:
    if message is None:
        return 0.0
    return message.seconds + message.nanos / 1e9


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@overload
def datetime_to_timestamp(value: dt.datetime) -> timestamp_pb2.Timestamp: ...
@overload
def datetime_to_timestamp(value: None) -> None: ...
def datetime_to_timestamp(value: dt.datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    message = timestamp_pb2.Timestamp()
    set_timestamp(message, value)
    return message


def set_timestamp(message: timestamp_pb2.Timestamp, value: dt.datetime) -> None:
    """Fills `message` with `value` (naive means UTC), as Timestamp.FromDatetime does,
    with integer arithmetic instead of its time tuple (a third of the cost)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    delta = value - _EPOCH
    message.seconds = delta.days * 86400 + delta.seconds
    message.nanos = delta.microseconds * 1000


def timestamp_to_datetime(message: timestamp_pb2.Timestamp) -> dt.datetime:
    return message.ToDatetime(tzinfo=dt.UTC)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# Messages that carry batches stay well under the 16 MiB message limit.
MAX_BATCH_BYTES = 4 * 1024 * 1024


def batch_length(messages: list, max_bytes: int = MAX_BATCH_BYTES) -> int:
    """How many of `messages`, from the first, go in one batch of about `max_bytes`
    (at least one: a single larger message still goes alone)."""
    size = 0
    for count, message in enumerate(messages, 1):
        size += message.ByteSize()
        if size >= max_bytes:
            return count
    return len(messages)


def field_path(prefix: str, path: Iterable[str | int]) -> str:
    """`params` + deque(['items', 2, 'name']) → `params.items[2].name`."""
    out = prefix
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out
