"""One error system: BatonError subclasses mapped to google.rpc.Status.

Servers raise these; the error interceptor turns them into a status with
ErrorInfo / BadRequest / RetryInfo details. Clients turn an AioRpcError back
into the same classes with `from_rpc_error`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from ._constants import ERROR_DOMAIN

_DETAILS_KEY = "grpc-status-details-bin"


_MAX_MESSAGE = 2100  # (the SDK cuts a method's exception message at 2,000)
_MAX_VALUE = 300
_MAX_VIOLATIONS = 50


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"... ({len(text) - limit} more)"


class BatonError(Exception):
    """Root of every error Baton raises on purpose."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    default_reason = "INTERNAL"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
        violations: Iterable[tuple[str, str]] = (),
        retry_after: float | None = None,
    ) -> None:
        # An error travels in the call's trailers, which gRPC bounds (16 KiB by
        # default): what it echoes of a request (a huge name, 10,000 duplicates)
        # is cut so that the error itself still arrives.
        message = _cut(message, _MAX_MESSAGE)
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.metadata = {k: _cut(str(v), _MAX_VALUE) for k, v in (metadata or {}).items()}
        found = [(_cut(f, _MAX_VALUE), _cut(d, _MAX_VALUE)) for f, d in violations]
        if len(found) > _MAX_VIOLATIONS + 1:  # (+1: what a caller reads back is kept)
            found[_MAX_VIOLATIONS:] = [("", f"... and {len(found) - _MAX_VIOLATIONS} more")]
        self.violations = found
        self.retry_after = retry_after

    def to_status(self) -> status_pb2.Status:
        details = [error_details_pb2.ErrorInfo(
            reason=self.reason, domain=ERROR_DOMAIN, metadata=self.metadata)]
        if self.violations:
            details.append(error_details_pb2.BadRequest(field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=f, description=d)
                for f, d in self.violations
            ]))
        if self.retry_after is not None:
            delay = duration_pb2.Duration()
            delay.FromNanoseconds(int(self.retry_after * 1e9))
            details.append(error_details_pb2.RetryInfo(retry_delay=delay))
        packed = []
        for detail in details:
            any_msg = any_pb2.Any()
            any_msg.Pack(detail)
            packed.append(any_msg)
        return status_pb2.Status(code=self.code.value[0], message=self.message, details=packed)

    def trailing_metadata(self) -> tuple[tuple[str, str | bytes], ...]:
        """The status with its details; with a retry delay, `retry-after` too (whole
        seconds), which the HTTP gateway hands on as the Retry-After header."""
        pairs: tuple[tuple[str, str | bytes], ...] = (
            (_DETAILS_KEY, self.to_status().SerializeToString()),)
        if self.retry_after is not None:
            pairs += (("retry-after", str(max(1, math.ceil(self.retry_after)))),)
        return pairs


class InvalidArgument(BatonError):
    code = grpc.StatusCode.INVALID_ARGUMENT
    default_reason = "INVALID_ARGUMENT"


class NotFound(BatonError):
    code = grpc.StatusCode.NOT_FOUND
    default_reason = "NOT_FOUND"


class AlreadyExists(BatonError):
    code = grpc.StatusCode.ALREADY_EXISTS
    default_reason = "ALREADY_EXISTS"


class FailedPrecondition(BatonError):
    code = grpc.StatusCode.FAILED_PRECONDITION
    default_reason = "FAILED_PRECONDITION"


class Aborted(BatonError):
    code = grpc.StatusCode.ABORTED
    default_reason = "ABORTED"


class Unavailable(BatonError):
    code = grpc.StatusCode.UNAVAILABLE
    default_reason = "UNAVAILABLE"


class DeadlineExceeded(BatonError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED
    default_reason = "DEADLINE_EXCEEDED"


class PermissionDenied(BatonError):
    code = grpc.StatusCode.PERMISSION_DENIED
    default_reason = "PERMISSION_DENIED"


class Unauthenticated(BatonError):
    code = grpc.StatusCode.UNAUTHENTICATED
    default_reason = "UNAUTHENTICATED"

    def trailing_metadata(self) -> tuple[tuple[str, str | bytes], ...]:
        """With the challenge an HTTP caller expects on a 401 (RFC 6750): a token that
        was presented but is no good says `error="invalid_token"`."""
        challenge = ('Bearer error="invalid_token"' if self.reason.startswith("TOKEN_")
                     else "Bearer")
        return (*super().trailing_metadata(), ("www-authenticate", challenge))


class ResourceExhausted(BatonError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    default_reason = "RESOURCE_EXHAUSTED"


class Cancelled(BatonError):
    code = grpc.StatusCode.CANCELLED
    default_reason = "CANCELLED"


class Internal(BatonError):
    code = grpc.StatusCode.INTERNAL
    default_reason = "INTERNAL"


_BY_CODE: dict[grpc.StatusCode, type[BatonError]] = {
    cls.code: cls
    for cls in (InvalidArgument, NotFound, AlreadyExists, FailedPrecondition, Aborted,
                Unavailable, DeadlineExceeded, PermissionDenied, Unauthenticated,
                ResourceExhausted, Cancelled, Internal)
}
_CODE_BY_NAME = {code.name: code for code in grpc.StatusCode}
_CODE_BY_VALUE = {code.value[0]: code for code in grpc.StatusCode}
assert code_pb2.NOT_FOUND == grpc.StatusCode.NOT_FOUND.value[0]


def required(value: str, field: str) -> str:
    """`value`, or INVALID_ARGUMENT naming `field` when it is empty."""
    if not value:
        raise InvalidArgument(f"{field} is required", violations=[(field, "is required")])
    return value


def bounded(value: str, field: str, limit: int) -> str:
    """`value`, or INVALID_ARGUMENT naming `field` when it is longer than `limit`."""
    if len(value) > limit:
        raise InvalidArgument(f"{field} is too long", violations=[
            (field, f"must be at most {limit} characters, not {len(value):,}")])
    return value


def mask_paths(mask: Sequence[str], populated: Iterable[str], mutable: Iterable[str],
               what: str) -> list[str]:
    """The fields an update changes (AIP-134): those `mask` names, every one of
    `mutable` for `*`, or, with no mask, those of `mutable` the request sets
    (`populated`); INVALID_ARGUMENT (INVALID_MASK) when that leaves none."""
    if list(mask) == ["*"]:
        return list(mutable)
    if mask:
        return list(mask)
    allowed = set(mutable)
    paths = [p for p in populated if p in allowed]
    if not paths:
        raise InvalidArgument(
            f"update_mask is empty and the request sets no field of the {what} to change",
            reason="INVALID_MASK", violations=[(
                "update_mask", "names no field: set the fields to change, or name them "
                f"(\"*\" replaces the whole {what})")])
    return paths


def status_code_named(name: str) -> grpc.StatusCode | None:
    """Returns the grpc.StatusCode called `name` (e.g. "UNAVAILABLE")."""
    return _CODE_BY_NAME.get(name.upper())


def error_for_code(code: grpc.StatusCode, message: str, **kwargs) -> BatonError:
    """Builds the BatonError subclass that carries `code`."""
    err = _BY_CODE.get(code, BatonError)(message, **kwargs)
    err.code = code
    return err


def parse_status(trailing_metadata) -> status_pb2.Status | None:
    """Extracts the google.rpc.Status from trailing metadata, if present."""
    for key, value in trailing_metadata or ():
        if key == _DETAILS_KEY:
            status = status_pb2.Status()
            status.ParseFromString(value)
            return status
    return None


def from_rpc_error(err: grpc.RpcError) -> BatonError:
    """Turns a client-side RpcError into the matching BatonError."""
    code = err.code()
    status = parse_status(err.trailing_metadata() if hasattr(err, "trailing_metadata") else ())
    return _from_parts(code, err.details() or code.name, status)


def from_status(status: status_pb2.Status) -> BatonError:
    """Turns a google.rpc.Status (as BatonError.to_status makes) into a BatonError."""
    code = status_code_from_value(status.code)
    return _from_parts(code, status.message or code.name, status)


def _from_parts(code: grpc.StatusCode, message: str,
                status: status_pb2.Status | None) -> BatonError:
    reason, metadata, violations, retry_after = None, {}, [], None
    if status is not None:
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason, metadata = info.reason, dict(info.metadata)
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                violations = [(v.field, v.description) for v in bad.field_violations]
            elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                info = error_details_pb2.RetryInfo()
                detail.Unpack(info)
                retry_after = info.retry_delay.ToNanoseconds() / 1e9
    return error_for_code(code, message, reason=reason, metadata=metadata,
                          violations=violations, retry_after=retry_after)


def status_code_from_value(value: int) -> grpc.StatusCode:
    return _CODE_BY_VALUE.get(value, grpc.StatusCode.UNKNOWN)
