"""RetryPolicy: how the orchestrator retries a failed call of a method."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from baton.registry.v1 import registry_pb2
from baton_core import duration_to_seconds, seconds_to_duration, status_code_named

Strategy = Literal["none", "fixed", "linear", "exponential"]

_STRATEGIES: dict[Strategy, registry_pb2.RetryPolicy.Strategy] = {
    "none": registry_pb2.RetryPolicy.STRATEGY_NONE,
    "fixed": registry_pb2.RetryPolicy.STRATEGY_FIXED,
    "linear": registry_pb2.RetryPolicy.STRATEGY_LINEAR,
    "exponential": registry_pb2.RetryPolicy.STRATEGY_EXPONENTIAL,
}
_STRATEGY_NAMES = {value: name for name, value in _STRATEGIES.items()}


@dataclass(frozen=True)
class RetryPolicy:
    """How failed calls of a method are retried.

    Attributes:
        strategy: How the delay between attempts grows.
        max_attempts: Attempts in all, the first included.
        initial_delay: Seconds before the second attempt.
        max_delay: Upper bound in seconds for any delay.
        multiplier: Growth factor of the exponential strategy.
        retryable_codes: gRPC status code names that are retried.
    """

    strategy: Strategy = "exponential"
    max_attempts: int = 3
    initial_delay: float = 0.1
    max_delay: float = 10.0
    multiplier: float = 2.0
    retryable_codes: tuple[str, ...] = ("UNAVAILABLE",)

    def __post_init__(self) -> None:
        if self.strategy not in _STRATEGIES:
            raise ValueError(f"unknown retry strategy {self.strategy!r}; "
                             f"expected one of {', '.join(_STRATEGIES)}")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.initial_delay < 0 or self.max_delay < 0:
            raise ValueError("delays must not be negative")
        if 0 < self.max_delay < self.initial_delay:
            raise ValueError(f"max_delay ({self.max_delay:g} s) must not be less than "
                             f"initial_delay ({self.initial_delay:g} s)")
        if self.multiplier < 1:
            raise ValueError("multiplier must be at least 1")
        if isinstance(self.retryable_codes, str):
            raise ValueError("retryable_codes must be a sequence of status code names, e.g. "
                             f"({self.retryable_codes!r},)")
        codes = tuple(code.upper() for code in self.retryable_codes)
        unknown = [code for code in codes if status_code_named(code) is None]
        if unknown:
            raise ValueError(f"unknown gRPC status codes: {', '.join(unknown)}")
        repeated = sorted({code for code in codes if codes.count(code) > 1})
        if repeated:  # (the registry refuses a policy that names a code twice)
            raise ValueError(f"retryable_codes names {', '.join(repeated)} more than once")
        object.__setattr__(self, "retryable_codes", codes)

    @classmethod
    def never(cls) -> RetryPolicy:
        """A policy that makes exactly one attempt."""
        return cls(strategy="none", max_attempts=1)

    def to_proto(self) -> registry_pb2.RetryPolicy:
        return registry_pb2.RetryPolicy(
            strategy=_STRATEGIES[self.strategy],
            max_attempts=self.max_attempts,
            initial_delay=seconds_to_duration(self.initial_delay),
            max_delay=seconds_to_duration(self.max_delay),
            multiplier=self.multiplier,
            retryable_codes=list(self.retryable_codes),
        )

    @classmethod
    def from_proto(cls, message: registry_pb2.RetryPolicy) -> RetryPolicy:
        """Reads a proto policy; unset fields take this class's defaults."""
        default = cls()
        return cls(
            strategy=_STRATEGY_NAMES.get(message.strategy, default.strategy),
            max_attempts=message.max_attempts or default.max_attempts,
            initial_delay=(duration_to_seconds(message.initial_delay)
                           if message.HasField("initial_delay") else default.initial_delay),
            max_delay=(duration_to_seconds(message.max_delay)
                       if message.HasField("max_delay") else default.max_delay),
            multiplier=message.multiplier or default.multiplier,
            retryable_codes=tuple(message.retryable_codes) or default.retryable_codes,
        )
