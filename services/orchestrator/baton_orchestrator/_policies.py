"""Per-operation policies and how an operation finds its policy."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from ._retry import Retry

DEFAULT_HOOKS = ("metrics", "audit", "session_lifecycle")
DEFAULT_NAME = "default"
FALLBACK_TIMEOUT = 30.0


@dataclass(frozen=True)
class RateLimit:
    """A token bucket: `burst` calls at once, refilled at `rate` per second."""

    rate: float
    burst: int


@dataclass(frozen=True)
class BreakerConfig:
    """Circuit breaker thresholds."""

    failure_threshold: int = 5
    open_timeout: float = 30.0
    half_open_max_calls: int = 1


@dataclass(frozen=True)
class Policy:
    """What applies to the operations matching `pattern`."""

    name: str
    pattern: str
    hooks: tuple[str, ...] = DEFAULT_HOOKS
    default_timeout: float | None = None
    max_timeout: float = 300.0
    retry: Retry | None = None
    required_roles: tuple[str, ...] = ()
    description: str = ""
    actor_rate_limit: RateLimit | None = None
    operation_rate_limit: RateLimit | None = None
    max_concurrency: int = 0
    breaker: BreakerConfig | None = None
    skippable_hooks: tuple[str, ...] = ()
    idempotency_window: float | None = None
    etag: str = ""
    source: str = "api"
    create_time: dt.datetime | None = None
    update_time: dt.datetime | None = None

    def matches(self, operation: str) -> bool:
        if self.pattern in ("*", operation):
            return True
        return self.pattern.endswith(".*") and operation.startswith(self.pattern[:-1])

    @property
    def specificity(self) -> tuple[int, int]:
        """Exact names beat prefixes, longer prefixes beat shorter, `*` comes last."""
        if self.pattern == "*":
            return (0, 0)
        if self.pattern.endswith(".*"):
            return (1, len(self.pattern))
        return (2, len(self.pattern))

    @property
    def admits(self) -> bool:
        """Whether executions need admission (rate limits or a concurrency cap)."""
        return bool(self.actor_rate_limit or self.operation_rate_limit or self.max_concurrency)

    def allows(self, roles: Iterable[str]) -> bool:
        held = set(roles)
        return not self.required_roles or "admin" in held or bool(held & set(self.required_roles))


DEFAULT_POLICY = Policy(name=DEFAULT_NAME, pattern="*", source="builtin",
                        description="Applies when no more specific policy matches.")


class PolicyBook:
    """The policies in force, most specific first; replaced whole when they change."""

    def __init__(self, policies: Iterable[Policy] = ()) -> None:
        self._policies: list[Policy] = []
        self._matches: dict[str, Policy] = {}
        self.replace(policies)

    def replace(self, policies: Iterable[Policy]) -> None:
        chosen = list(policies)
        if not any(p.pattern == "*" for p in chosen):
            chosen.append(DEFAULT_POLICY)
        self._policies = sorted(chosen, key=lambda p: (p.specificity, p.name), reverse=True)
        self._matches = {}

    def all(self) -> list[Policy]:
        return list(self._policies)

    def get(self, name: str) -> Policy | None:
        return next((p for p in self._policies if p.name == name), None)

    def matching(self, operation: str) -> list[Policy]:
        """Every policy whose pattern matches, most specific first."""
        return [p for p in self._policies if p.matches(operation)]

    def match(self, operation: str) -> Policy:
        found = self._matches.get(operation)
        if found is None:
            found = next((p for p in self._policies if p.matches(operation)), DEFAULT_POLICY)
            if len(self._matches) > 10_000:
                self._matches = {}
            self._matches[operation] = found
        return found
