"""Policies between protobuf (the API, the YAML file, the stored JSON) and the
`Policy` values Dispatch reads; and the checks a policy must pass."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

from google.protobuf import json_format

from baton.orchestrator.v1 import circuit_breakers_pb2, policies_pb2
from baton.registry.v1 import registry_pb2
from baton_core import (
    InvalidArgument,
    access,
    datetime_to_timestamp,
    duration_problems,
    duration_to_seconds,
    mask_paths,
    seconds_to_duration,
)

from ._policies import DEFAULT_HOOKS, DEFAULT_NAME, BreakerConfig, Policy, RateLimit
from ._retry import Retry, retry_problems

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
_PATTERN = re.compile(r"^(\*|[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*(\.\*)?)$")
MAX_PATTERN_CHARS = 255  # the column's size
MAX_DESCRIPTION_CHARS = 16 * 1024  # as a method's
_MAX_TIMEOUT = 24 * 3600.0
# Fields a caller may not set; the server owns them.
_OUTPUT_FIELDS = ("etag", "source", "create_time", "update_time")
MUTABLE_PATHS = frozenset(f.name for f in policies_pb2.Policy.DESCRIPTOR.fields) - {
    "name", *_OUTPUT_FIELDS}


def update_paths(message: policies_pb2.Policy, mask: list[str]) -> list[str]:
    """The fields an UpdatePolicy changes (see baton_core.mask_paths)."""
    return mask_paths(mask, sorted(f.name for f, _ in message.ListFields()),
                      sorted(MUTABLE_PATHS), "policy")


_STRATEGY = {"none": registry_pb2.RetryPolicy.STRATEGY_NONE,
             "fixed": registry_pb2.RetryPolicy.STRATEGY_FIXED,
             "linear": registry_pb2.RetryPolicy.STRATEGY_LINEAR,
             "exponential": registry_pb2.RetryPolicy.STRATEGY_EXPONENTIAL}


def _rate(message: policies_pb2.RateLimit) -> RateLimit | None:
    if message.requests_per_second <= 0:
        return None
    burst = message.burst or max(1, math.ceil(message.requests_per_second))
    return RateLimit(message.requests_per_second, burst)


def breaker_from_proto(message: circuit_breakers_pb2.CircuitBreakerConfig) -> BreakerConfig:
    default = BreakerConfig()
    return BreakerConfig(
        failure_threshold=message.failure_threshold or default.failure_threshold,
        open_timeout=duration_to_seconds(message.open_timeout) or default.open_timeout,
        half_open_max_calls=message.half_open_max_calls or default.half_open_max_calls)


def breaker_to_proto(config: BreakerConfig) -> circuit_breakers_pb2.CircuitBreakerConfig:
    return circuit_breakers_pb2.CircuitBreakerConfig(
        failure_threshold=config.failure_threshold,
        open_timeout=seconds_to_duration(config.open_timeout),
        half_open_max_calls=config.half_open_max_calls)


def retry_to_proto(retry: Retry) -> registry_pb2.RetryPolicy:
    return registry_pb2.RetryPolicy(
        strategy=_STRATEGY[retry.strategy], max_attempts=retry.max_attempts,
        initial_delay=seconds_to_duration(retry.initial_delay),
        max_delay=seconds_to_duration(retry.max_delay), multiplier=retry.multiplier,
        retryable_codes=sorted(c.name for c in retry.retryable))


def policy_from_proto(message: policies_pb2.Policy, *, source: str = "api") -> Policy:
    return Policy(
        name=message.name, pattern=message.pattern,
        hooks=tuple(message.hooks) or DEFAULT_HOOKS,
        default_timeout=duration_to_seconds(message.default_timeout) or None,
        max_timeout=duration_to_seconds(message.max_timeout) or 300.0,
        retry=Retry.from_proto(message.retry_policy) if message.HasField("retry_policy")
        else None,
        required_roles=tuple(message.required_roles), description=message.description,
        actor_rate_limit=_rate(message.actor_rate_limit),
        operation_rate_limit=_rate(message.operation_rate_limit),
        max_concurrency=message.max_concurrency,
        breaker=breaker_from_proto(message.circuit_breaker)
        if message.HasField("circuit_breaker") else None,
        skippable_hooks=tuple(message.skippable_hooks),
        idempotency_window=duration_to_seconds(message.idempotency_window) or None,
        etag=message.etag, source=source)


def policy_to_proto(policy: Policy) -> policies_pb2.Policy:
    message = policies_pb2.Policy(
        name=policy.name, pattern=policy.pattern, hooks=list(policy.hooks),
        max_timeout=seconds_to_duration(policy.max_timeout),
        required_roles=list(policy.required_roles), description=policy.description,
        max_concurrency=policy.max_concurrency, skippable_hooks=list(policy.skippable_hooks),
        etag=policy.etag, source=policy.source)
    if policy.default_timeout is not None:
        message.default_timeout.CopyFrom(seconds_to_duration(policy.default_timeout))
    if policy.retry is not None:
        message.retry_policy.CopyFrom(retry_to_proto(policy.retry))
    for limit, target in ((policy.actor_rate_limit, message.actor_rate_limit),
                          (policy.operation_rate_limit, message.operation_rate_limit)):
        if limit is not None:
            target.CopyFrom(policies_pb2.RateLimit(requests_per_second=limit.rate,
                                                   burst=limit.burst))
    if policy.breaker is not None:
        message.circuit_breaker.CopyFrom(breaker_to_proto(policy.breaker))
    if policy.idempotency_window is not None:
        message.idempotency_window.CopyFrom(seconds_to_duration(policy.idempotency_window))
    if policy.create_time is not None:
        message.create_time.CopyFrom(datetime_to_timestamp(policy.create_time))
    if policy.update_time is not None:
        message.update_time.CopyFrom(datetime_to_timestamp(policy.update_time))
    return message


def spec_of(message: policies_pb2.Policy) -> dict[str, Any]:
    """The stored form: the policy as JSON without the fields the server owns."""
    spec = policies_pb2.Policy()
    spec.CopyFrom(message)
    for name in _OUTPUT_FIELDS:
        spec.ClearField(name)
    return json_format.MessageToDict(spec, preserving_proto_field_name=True)


def parse_spec(spec: dict[str, Any]) -> policies_pb2.Policy:
    """A policy from its JSON form (stored rows, the YAML file).

    Raises:
        InvalidArgument: The JSON does not describe a policy.
    """
    try:
        return json_format.ParseDict(spec, policies_pb2.Policy())
    except json_format.ParseError as exc:
        raise InvalidArgument(f"not a policy: {exc}", reason="INVALID_POLICY") from None


def validate(message: policies_pb2.Policy, known_hooks: Iterable[str]) -> None:
    """Raises InvalidArgument listing every problem of `message`."""
    problems: list[tuple[str, str]] = []
    if not _NAME.match(message.name):
        problems.append(("policy.name", "must be 1-63 lowercase letters, digits, '.', '_', '-'"))
    if not _PATTERN.match(message.pattern):
        problems.append(("policy.pattern", "must be `*`, an operation name or `prefix.*`"))
    elif len(message.pattern) > MAX_PATTERN_CHARS:
        problems.append(("policy.pattern", f"must be at most {MAX_PATTERN_CHARS} characters"))
    if len(message.description) > MAX_DESCRIPTION_CHARS:
        problems.append(("policy.description",
                         f"must be at most {MAX_DESCRIPTION_CHARS:,} characters"))
    if message.name == DEFAULT_NAME and message.pattern != "*":
        problems.append(("policy.pattern", "the default policy's pattern must be `*`"))
    known = set(known_hooks)
    for i, hook in enumerate(message.hooks):
        if hook not in known:
            problems.append((f"policy.hooks[{i}]", f"no hook named {hook!r} is registered"))
    runs = set(message.hooks) or set(DEFAULT_HOOKS)
    for i, hook in enumerate(message.skippable_hooks):
        if hook not in runs:
            problems.append((f"policy.skippable_hooks[{i}]",
                             f"{hook!r} is not one of the policy's hooks"))
    for i, role in enumerate(message.required_roles):
        if role not in access.ROLES:
            problems.append((f"policy.required_roles[{i}]",
                             f"{role!r} is not a role (one of {', '.join(access.ROLES)})"))
    if message.HasField("retry_policy"):
        problems += retry_problems(message.retry_policy, "policy.retry_policy")
    for name, value in (("default_timeout", message.default_timeout),
                        ("max_timeout", message.max_timeout),
                        ("idempotency_window", message.idempotency_window),
                        ("circuit_breaker.open_timeout", message.circuit_breaker.open_timeout)):
        problems += duration_problems(value, f"policy.{name}")
    default = duration_to_seconds(message.default_timeout)
    maximum = duration_to_seconds(message.max_timeout)
    if default < 0 or maximum < 0:
        problems.append(("policy.default_timeout", "timeouts must not be negative"))
    if maximum > _MAX_TIMEOUT:
        problems.append(("policy.max_timeout", "must be at most 24h"))
    if default and default > (maximum or 300.0):
        problems.append(("policy.default_timeout", "must not exceed max_timeout"))
    for field in ("actor_rate_limit", "operation_rate_limit"):
        limit = getattr(message, field)
        if not math.isfinite(limit.requests_per_second) or limit.requests_per_second < 0 \
                or limit.burst < 0:
            problems.append((f"policy.{field}",
                             "rate and burst must be finite numbers, not negative"))
    if message.max_concurrency < 0:
        problems.append(("policy.max_concurrency", "must not be negative"))
    breaker = message.circuit_breaker
    if breaker.failure_threshold < 0 or breaker.half_open_max_calls < 0 or \
            duration_to_seconds(breaker.open_timeout) < 0:
        problems.append(("policy.circuit_breaker", "thresholds must not be negative"))
    if duration_to_seconds(message.idempotency_window) < 0:
        problems.append(("policy.idempotency_window", "must not be negative"))
    if problems:
        raise InvalidArgument("invalid policy: " + "; ".join(f"{f}: {d}" for f, d in problems),
                              reason="INVALID_POLICY", violations=problems)
