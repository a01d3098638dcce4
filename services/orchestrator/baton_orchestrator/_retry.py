"""Retry policies: which failures retry and how long to wait between attempts."""

from __future__ import annotations

import math
from dataclasses import dataclass

import grpc

from baton.registry.v1 import registry_pb2
from baton_core import duration_problems, duration_to_seconds, status_code_named

_STRATEGIES = {
    registry_pb2.RetryPolicy.STRATEGY_NONE: "none",
    registry_pb2.RetryPolicy.STRATEGY_FIXED: "fixed",
    registry_pb2.RetryPolicy.STRATEGY_LINEAR: "linear",
    registry_pb2.RetryPolicy.STRATEGY_EXPONENTIAL: "exponential",
}


def retry_problems(policy: registry_pb2.RetryPolicy, field: str) -> list[tuple[str, str]]:
    """Every problem of a retry policy (of a policy or a workflow step), as field
    violations under `field`: what `Retry.from_proto` would otherwise quietly
    replace by a default (a negative count or delay, an unknown status code)."""
    found = [v for name in ("initial_delay", "max_delay")
             for v in duration_problems(getattr(policy, name), f"{field}.{name}")]
    if policy.max_attempts < 0:
        found.append((f"{field}.max_attempts", "must not be negative"))
    if not math.isfinite(policy.multiplier) or policy.multiplier < 0:
        found.append((f"{field}.multiplier", "must be a finite number, not negative"))
    initial, maximum = (duration_to_seconds(policy.initial_delay),
                        duration_to_seconds(policy.max_delay))
    for name, value in (("initial_delay", initial), ("max_delay", maximum)):
        if value < 0:
            found.append((f"{field}.{name}", "must not be negative"))
    if 0 < maximum < initial:
        found.append((f"{field}.max_delay", "must not be less than initial_delay"))
    for i, code in enumerate(policy.retryable_codes):
        if status_code_named(code) is None:
            found.append((f"{field}.retryable_codes[{i}]",
                          f"is not a gRPC status code name: {code!r}"))
    return found


@dataclass(frozen=True)
class Retry:
    """A resolved retry policy."""

    strategy: str = "exponential"
    max_attempts: int = 3
    initial_delay: float = 0.05
    max_delay: float = 2.0
    multiplier: float = 2.0
    retryable: frozenset[grpc.StatusCode] = frozenset({grpc.StatusCode.UNAVAILABLE})

    @classmethod
    def from_proto(cls, policy: registry_pb2.RetryPolicy | None) -> Retry:
        default = cls()
        if policy is None or policy.ByteSize() == 0:
            return default
        strategy = _STRATEGIES.get(policy.strategy, default.strategy)
        codes = [status_code_named(name) for name in policy.retryable_codes]
        return cls(
            strategy=strategy,
            max_attempts=1 if strategy == "none" else (policy.max_attempts or default.max_attempts),
            initial_delay=duration_to_seconds(policy.initial_delay) or default.initial_delay,
            max_delay=duration_to_seconds(policy.max_delay) or default.max_delay,
            multiplier=policy.multiplier or default.multiplier,
            retryable=frozenset(c for c in codes if c is not None) or default.retryable,
        )

    def should_retry(self, code: grpc.StatusCode, attempt: int) -> bool:
        """Whether a failure with `code` on attempt number `attempt` is retried."""
        return self.strategy != "none" and attempt < self.max_attempts and code in self.retryable

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        if self.strategy == "fixed":
            value = self.initial_delay
        elif self.strategy == "linear":
            value = self.initial_delay * attempt
        else:
            value = self.initial_delay * self.multiplier ** (attempt - 1)
        return min(value, self.max_delay)
