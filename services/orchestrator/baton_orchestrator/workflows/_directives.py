"""Run directives: the caller's instructions for a whole run, applied to every step."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._references import references_in


@dataclass(frozen=True)
class RunDirectives:
    """What StartRunRequest.directives asked for; stored with the run (wf_runs.directives).

    skip_hooks and dry_run go to every step's DispatchCall as given; timeout
    bounds each step's attempt timeout; idempotency_key only dedupes StartRun.
    """

    skip_hooks: tuple[str, ...] = ()
    timeout: float | None = None
    dry_run: bool = False
    idempotency_key: str = ""

    def __bool__(self) -> bool:
        return bool(self.skip_hooks or self.timeout or self.dry_run or self.idempotency_key)

    def to_dict(self) -> dict[str, Any] | None:
        if not self:
            return None
        return {"skip_hooks": list(self.skip_hooks), "timeout": self.timeout,
                "dry_run": self.dry_run, "idempotency_key": self.idempotency_key}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> RunDirectives:
        data = data or {}
        return cls(skip_hooks=tuple(data.get("skip_hooks") or ()),
                   timeout=data.get("timeout") or None, dry_run=bool(data.get("dry_run")),
                   idempotency_key=data.get("idempotency_key") or "")

    def step_timeout(self, effective: float) -> float:
        """A step's attempt timeout (already resolved from step, policy and method)
        bounded by the run's timeout directive."""
        return min(effective, self.timeout) if self.timeout else effective

    def skips(self, params: Any) -> bool:
        """Under dry_run, a step whose params read `${steps...}` cannot be resolved
        (dry-run steps produce no outputs): it is skipped."""
        return self.dry_run and any(r.root == "steps" for r in references_in(params))
