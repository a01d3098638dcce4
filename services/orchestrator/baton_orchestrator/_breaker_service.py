"""The CircuitBreakers servicer: breaker state per worker endpoint."""

from __future__ import annotations

import time
import urllib.parse

from google.protobuf import field_mask_pb2
from redis.exceptions import RedisError

from baton.orchestrator.v1 import circuit_breakers_pb2 as pb
from baton.orchestrator.v1 import circuit_breakers_pb2_grpc
from baton_core import (
    InvalidArgument,
    Unavailable,
    bounded,
    check_enum,
    duration_to_seconds,
)

from ._breakers import HALF_OPEN, OPEN, Breakers, BreakerState
from ._control import ControlPlane
from ._policies import BreakerConfig
from ._policy_convert import breaker_from_proto, breaker_to_proto

_STATES = {"closed": pb.CircuitBreaker.STATE_CLOSED, OPEN: pb.CircuitBreaker.STATE_OPEN,
           HALF_OPEN: pb.CircuitBreaker.STATE_HALF_OPEN}
_PATHS = {"failure_threshold", "open_timeout", "half_open_max_calls"}


# As long as the column that keeps an endpoint's config.
MAX_ENDPOINT_CHARS = 255


def _endpoint(value: str, strict: bool = True) -> str:
    """The endpoint a request names; not `strict` (a reset), any stored name, so that
    one stored before names were checked can still be cleared."""
    endpoint = urllib.parse.unquote(value).strip()
    if not endpoint:
        raise InvalidArgument("endpoint is required", violations=[("endpoint", "is required")])
    if not strict:
        return endpoint
    if any(ch.isspace() or not ch.isprintable() for ch in endpoint):
        raise InvalidArgument("endpoint is not a worker address", violations=[
            ("endpoint", "must be a worker's address as it registered (host:port), "
             "without spaces or control characters")])
    return bounded(endpoint, "endpoint", MAX_ENDPOINT_CHARS)


class CircuitBreakersServicer(circuit_breakers_pb2_grpc.CircuitBreakersServicer):
    def __init__(self, breakers: Breakers, control: ControlPlane) -> None:
        self._breakers = breakers
        self._control = control

    async def _proto(self, endpoint: str) -> pb.CircuitBreaker:
        try:
            state = await self._breakers.state(endpoint)
        except RedisError as exc:
            raise Unavailable(f"breaker state unavailable: {exc}",
                              reason="REDIS_UNAVAILABLE") from None
        return self._message(state)

    def _message(self, state: BreakerState) -> pb.CircuitBreaker:
        override = self._breakers.overrides.get(state.endpoint)
        config = override or self._breakers.last_config.get(state.endpoint)
        message = pb.CircuitBreaker(
            endpoint=state.endpoint, state=_STATES.get(state.state, pb.CircuitBreaker.STATE_CLOSED),
            consecutive_failures=state.failures, config_override=override is not None,
            half_open_calls=state.half_open_calls,
            half_open_successes=state.half_open_successes)
        if config is not None:
            message.config.CopyFrom(breaker_to_proto(config))
        if state.state == OPEN and state.open_time is not None:
            message.open_time.FromNanoseconds(int(state.open_time * 1e9))
            if config is not None:
                retry_at = state.open_time + config.open_timeout
                message.retry_time.FromNanoseconds(int(retry_at * 1e9))
                if time.time() >= retry_at:
                    message.state = pb.CircuitBreaker.STATE_HALF_OPEN
        return message

    async def ListCircuitBreakers(self, request, context):
        try:
            endpoints = await self._breakers.endpoints()
        except RedisError as exc:
            raise Unavailable(f"breaker state unavailable: {exc}",
                              reason="REDIS_UNAVAILABLE") from None
        breakers = [await self._proto(e) for e in endpoints]
        if check_enum(pb.CircuitBreaker.State, request.state, "state"):
            breakers = [b for b in breakers if b.state == request.state]
        return pb.ListCircuitBreakersResponse(circuit_breakers=breakers)

    async def GetCircuitBreaker(self, request, context):
        return pb.GetCircuitBreakerResponse(
            circuit_breaker=await self._proto(_endpoint(request.endpoint)))

    async def UpdateCircuitBreakerConfig(self, request, context):
        endpoint = _endpoint(request.endpoint)
        mask = list(request.update_mask.paths)
        given = pb.CircuitBreakerConfig()
        given.CopyFrom(request.config)
        if mask == ["*"]:
            # The whole config as the request has it; what it leaves unset, the default.
            defaults = breaker_to_proto(BreakerConfig())
            unset = [name for name in sorted(_PATHS) if (
                not given.HasField(name) if name == "open_timeout" else not getattr(given, name))]
            if unset:
                field_mask_pb2.FieldMask(paths=unset).MergeMessage(defaults, given)
        values = {"failure_threshold": given.failure_threshold,
                  "half_open_max_calls": given.half_open_max_calls,
                  "open_timeout": duration_to_seconds(given.open_timeout)}
        # Without a mask, the fields the request sets (a zero is "not set"); "*" all.
        paths = set(_PATHS) if mask == ["*"] else set(mask) or {
            p for p, v in values.items() if v}
        if paths - _PATHS:
            raise InvalidArgument("unknown update_mask paths", reason="INVALID_MASK", violations=[
                ("update_mask", f"unknown path {p}" + (" (\"*\" stands alone)" if p == "*"
                                                       else "")) for p in sorted(paths - _PATHS)])
        if not paths:
            raise InvalidArgument("the request changes nothing", reason="INVALID_MASK",
                                  violations=[("config", "set failure_threshold, open_timeout "
                                               "or half_open_max_calls")])
        problems = [(f"config.{p}", "must be positive" if p == "open_timeout"
                     else "must be at least 1") for p in sorted(paths) if values[p] <= 0]
        if problems:
            raise InvalidArgument("invalid breaker config: " + "; ".join(
                f"{f}: {d}" for f, d in problems), violations=problems)
        current = breaker_to_proto(self._breakers.overrides.get(endpoint)
                                   or self._breakers.last_config.get(endpoint) or BreakerConfig())
        # A Duration is replaced whole, not merged (the stored nanos would stay).
        field_mask_pb2.FieldMask(paths=sorted(paths)).MergeMessage(
            given, current, replace_message_field=True)
        await self._control.store.put_breaker_config(endpoint, breaker_from_proto(current))
        await self._control.changed()
        return pb.UpdateCircuitBreakerConfigResponse(circuit_breaker=await self._proto(endpoint))

    async def ResetCircuitBreaker(self, request, context):
        endpoint = _endpoint(request.endpoint, strict=False)
        try:
            await self._breakers.reset(endpoint)
        except RedisError as exc:
            raise Unavailable(f"breaker state unavailable: {exc}",
                              reason="REDIS_UNAVAILABLE") from None
        if request.clear_config:
            await self._control.store.delete_breaker_config(endpoint)
            await self._control.changed()
            # Until a call uses a policy's config again, the breaker has none to show.
            self._breakers.last_config.pop(endpoint, None)
        return pb.ResetCircuitBreakerResponse(circuit_breaker=await self._proto(endpoint))
