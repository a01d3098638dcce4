"""The built-in hooks: metrics, audit and session_lifecycle (all post-hooks)."""

from __future__ import annotations

import json
from collections.abc import Awaitable
from typing import Any

from prometheus_client import Counter, Histogram

from baton.sessions.v1 import sessions_pb2
from baton_core import AuditEntry, AuditSink, Identity, dict_to_struct, seconds_to_duration
from baton_core import constants as c

from ._hooks import FAIL_OPEN, POST, HookInput, HookOutcome
from ._sessions import SessionsGateway

DISPATCH_TOTAL = Counter("baton_dispatch_total", "Executions by operation and outcome",
                         ["operation", "outcome"])
DISPATCH_SECONDS = Histogram("baton_dispatch_seconds",
                             "Execution latency by operation and outcome",
                             ["operation", "outcome"])


def outcome_name(outcome: HookOutcome) -> str:
    return "OK" if outcome.error is None else outcome.error.code.name


class _Builtin:
    """A built-in post-hook: `post_now` does its work inline and returns an
    awaitable only when there is I/O left to wait for; `post` awaits the same."""

    name = ""
    stage, order, skippable, description = POST, 0, False, ""
    builtin, address, failure_mode = True, "", FAIL_OPEN
    timeout: float | None = None

    async def pre(self, call: HookInput) -> None:
        return None

    async def post(self, call: HookInput, outcome: HookOutcome) -> None:
        pending = self.post_now(call, outcome)
        if pending is not None:
            await pending

    def post_now(self, call: HookInput, outcome: HookOutcome) -> Awaitable[None] | None:
        return None


class MetricsHook(_Builtin):
    name, order = "metrics", 100
    description = "Prometheus counters and latency histograms per operation and outcome."

    def __init__(self) -> None:
        # The labelled series by (operation, outcome): `labels()` takes a lock and
        # builds its key on every call, which is most of what a hook costs here.
        self._series: dict[tuple[str, str], tuple] = {}

    def post_now(self, call: HookInput, outcome: HookOutcome) -> None:
        key = (call.operation, outcome_name(outcome))
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = (DISPATCH_TOTAL.labels(*key),
                                          DISPATCH_SECONDS.labels(*key))
        series[0].inc()
        series[1].observe(outcome.seconds)


class AuditHook(_Builtin):
    name, order = "audit", 150
    description = "One audit record per executed operation: actor, operation, outcome."

    def __init__(self, sink: AuditSink) -> None:
        self._sink = sink

    def post_now(self, call: HookInput, outcome: HookOutcome) -> None:
        changes = {"execution_id": call.execution_id, "policy": call.policy,
                   "duration_ms": round(outcome.seconds * 1000, 3),
                   "attempts": outcome.attempts, "executed": call.executed}
        for key in ("session_id", "run_id", "step_id"):
            if getattr(call, key):
                changes[key] = getattr(call, key)
        if outcome.error is not None:
            changes["error"] = outcome.error.message[:500]
        self._sink.record(AuditEntry(
            actor=call.actor, action="dispatch", entity_type="operation", entity=call.operation,
            changes=changes, outcome=outcome_name(outcome), via=call.via, roles=call.roles,
            service="orchestrator"))


class SessionLifecycleHook(_Builtin):
    name, order, skippable = "session_lifecycle", 200, True
    description = "Records the execution in the caller's session history."

    def __init__(self, sessions: SessionsGateway) -> None:
        self._sessions = sessions

    def post_now(self, call: HookInput, outcome: HookOutcome) -> Awaitable[None] | None:
        if not call.session_id or call.dry_run or not call.executed:
            return None
        return self._track(call, outcome)

    async def _track(self, call: HookInput, outcome: HookOutcome) -> None:
        status = (sessions_pb2.Execution.STATUS_SUCCEEDED if outcome.error is None
                  else sessions_pb2.Execution.STATUS_FAILED)
        execution = sessions_pb2.Execution(
            execution_id=call.execution_id, session_id=call.session_id,
            operation=call.operation, status=status,
            duration=seconds_to_duration(outcome.seconds),
            error="" if outcome.error is None else outcome.error.message,
            run_id=call.run_id, step_id=call.step_id, actor=call.actor,
            result=dict_to_struct(_kept_result(outcome.result)))
        await self._sessions.track(execution, identity=Identity(call.actor, call.roles))


def _kept_result(result: dict[str, Any] | None) -> dict[str, Any]:
    """The result as the session's history keeps it: whole, or, when it is larger than
    the history takes, a note saying so (the execution is recorded either way)."""
    if not result:
        return {}
    try:
        size = len(json.dumps(result, separators=(",", ":"), allow_nan=False).encode())
    except ValueError:  # NaN or an infinity, which JSON has no words for
        return {"result_omitted": "it holds a number JSON cannot carry (NaN or infinity)"}
    if size <= c.MAX_EXECUTION_RESULT_BYTES:
        return result
    return {"result_omitted": f"{size} bytes as JSON, over the history's limit of "
                              f"{c.MAX_EXECUTION_RESULT_BYTES}"}
