"""Per-operation policies and how an operation finds its policy."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ._retry import Retry


@dataclass(frozen=True)
class Policy:
    """What applies to the operations matching `pattern`."""

    name: str
    pattern: str
    hooks: tuple[str, ...] = ("metrics", "session_lifecycle")
    default_timeout: float = 30.0
    max_timeout: float = 300.0
    retry: Retry | None = None
    required_roles: tuple[str, ...] = ()
    description: str = ""

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


DEFAULT_POLICY = Policy(name="default", pattern="*",
                        description="Applies when no more specific policy matches.")


class PolicyBook:
    """The policies in force, most specific first."""

    def __init__(self, policies: Iterable[Policy] = (DEFAULT_POLICY,)) -> None:
        self._policies = sorted(policies, key=lambda p: p.specificity, reverse=True)

    def all(self) -> list[Policy]:
        return list(self._policies)

    def get(self, name: str) -> Policy | None:
        return next((p for p in self._policies if p.name == name), None)

    def match(self, operation: str) -> Policy:
        return next((p for p in self._policies if p.matches(operation)), DEFAULT_POLICY)
