"""Hooks that run around every execution, and the chain that runs them in order."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from prometheus_client import Counter, Histogram

from baton.sessions.v1 import sessions_pb2
from baton_core import BatonError, dict_to_struct, seconds_to_duration

from ._sessions import SessionsGateway

log = logging.getLogger("baton.orchestrator.hooks")

PRE, POST = "pre", "post"


@dataclass
class HookInput:
    """What a hook sees of one execution."""

    operation: str
    params: dict[str, Any]
    execution_id: str
    session_id: str = ""
    actor: str = ""
    run_id: str = ""
    step_id: str = ""
    dry_run: bool = False
    context: dict[str, Any] = field(default_factory=dict)


@dataclass
class HookOutcome:
    """What a post-hook sees of the result."""

    result: dict[str, Any] | None
    error: BatonError | None
    seconds: float


class Hook(Protocol):
    name: str
    stage: str
    order: int
    skippable: bool
    description: str

    async def pre(self, call: HookInput) -> None: ...

    async def post(self, call: HookInput, outcome: HookOutcome) -> None: ...


DISPATCH_TOTAL = Counter("baton_dispatch_total", "Executions by operation and outcome",
                         ["operation", "outcome"])
DISPATCH_SECONDS = Histogram("baton_dispatch_seconds", "Execution latency by operation",
                             ["operation"])


class MetricsHook:
    name, stage, order, skippable = "metrics", POST, 100, False
    description = "Prometheus counters and latency histograms per operation and outcome."

    async def pre(self, call: HookInput) -> None:
        return None

    async def post(self, call: HookInput, outcome: HookOutcome) -> None:
        label = "ok" if outcome.error is None else outcome.error.code.name.lower()
        DISPATCH_TOTAL.labels(call.operation, label).inc()
        DISPATCH_SECONDS.labels(call.operation).observe(outcome.seconds)


class SessionLifecycleHook:
    name, stage, order, skippable = "session_lifecycle", POST, 200, False
    description = "Records the execution in the caller's session history."

    def __init__(self, sessions: SessionsGateway) -> None:
        self._sessions = sessions

    async def pre(self, call: HookInput) -> None:
        return None

    async def post(self, call: HookInput, outcome: HookOutcome) -> None:
        if not call.session_id or call.dry_run:
            return
        status = (sessions_pb2.Execution.STATUS_SUCCEEDED if outcome.error is None
                  else sessions_pb2.Execution.STATUS_FAILED)
        execution = sessions_pb2.Execution(
            execution_id=call.execution_id, session_id=call.session_id,
            operation=call.operation, status=status,
            duration=seconds_to_duration(outcome.seconds),
            error="" if outcome.error is None else outcome.error.message,
            run_id=call.run_id, step_id=call.step_id, actor=call.actor,
            result=dict_to_struct(outcome.result or {}))
        await self._sessions.track(execution)


class HookChain:
    """The hooks a policy selects, in run order."""

    def __init__(self, hooks: Sequence[Hook]) -> None:
        self.hooks = list(hooks)

    @property
    def names(self) -> list[str]:
        return [h.name for h in self.hooks]

    async def pre(self, call: HookInput) -> None:
        for hook in self.hooks:
            if hook.stage == PRE:
                await hook.pre(call)

    async def post(self, call: HookInput, outcome: HookOutcome) -> None:
        for hook in self.hooks:
            if hook.stage != POST:
                continue
            try:
                await hook.post(call, outcome)
            except Exception:  # noqa: BLE001 - a post-hook never undoes an execution
                log.exception("post-hook %s failed for %s", hook.name, call.operation)


class HookRegistry:
    """Every known hook, by name, in run order."""

    def __init__(self, hooks: Iterable[Hook]) -> None:
        self._hooks = sorted(hooks, key=lambda h: (h.stage != PRE, h.order, h.name))

    def all(self) -> list[Hook]:
        return list(self._hooks)

    def get(self, name: str) -> Hook | None:
        return next((h for h in self._hooks if h.name == name), None)

    def chain(self, names: Iterable[str], skip: Iterable[str] = ()) -> HookChain:
        wanted, skipped = set(names), set(skip)
        return HookChain([h for h in self._hooks if h.name in wanted
                          and not (h.skippable and h.name in skipped)])
