"""Run and step state as held in memory by the run's owner, and its rows."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, overload

from baton_core import utcnow

from ._definition import WorkflowDef
from ._directives import RunDirectives
from ._states import PENDING, advance_run, advance_step


@overload
def utc(value: dt.datetime) -> dt.datetime: ...
@overload
def utc(value: None) -> None: ...
def utc(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite hands datetimes back without a zone; they were written in UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


@dataclass
class StepState:
    step_id: str
    position: int
    method: str
    status: str = PENDING
    attempts: int = 0
    first_attempt: int = 1
    input: dict[str, Any] | None = None
    output: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    start_time: dt.datetime | None = None
    end_time: dt.datetime | None = None

    def row(self, run_id: str) -> dict[str, Any]:
        return {"run_id": run_id, "step_id": self.step_id, "position": self.position,
                "method": self.method, "status": self.status, "attempts": self.attempts,
                "first_attempt": self.first_attempt, "input": self.input,
                "output": self.output, "error": self.error, "start_time": self.start_time,
                "end_time": self.end_time}

    @classmethod
    def from_row(cls, row: Any) -> StepState:
        return cls(step_id=row.step_id, position=row.position, method=row.method,
                   status=row.status, attempts=row.attempts, first_attempt=row.first_attempt,
                   input=row.input, output=row.output, error=row.error,
                   start_time=utc(row.start_time), end_time=utc(row.end_time))


@dataclass
class RunState:
    run_id: str
    definition: WorkflowDef
    workflow_id: str | None = None
    workflow_version: int = 0
    input: dict[str, Any] = field(default_factory=dict)
    session_id: str = ""
    actor: str = ""
    request_id: str | None = None
    status: str = PENDING
    error: dict[str, Any] | None = None
    retry_count: int = 0
    create_time: dt.datetime = field(default_factory=utcnow)
    start_time: dt.datetime | None = None
    end_time: dt.datetime | None = None
    update_time: dt.datetime = field(default_factory=utcnow)
    deadline: float | None = None
    owner: str | None = None
    lease_expires_at: float | None = None
    cancel_requested: bool = False
    steps: dict[str, StepState] = field(default_factory=dict)
    seq: int = 0
    directives: RunDirectives = field(default_factory=RunDirectives)

    def row(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "workflow_id": self.workflow_id,
                "workflow_version": self.workflow_version,
                "workflow_name": self.definition.name, "definition": self.definition.to_dict(),
                "input": self.input, "session_id": self.session_id, "actor": self.actor,
                "request_id": self.request_id, "status": self.status, "error": self.error,
                "retry_count": self.retry_count, "create_time": self.create_time,
                "start_time": self.start_time, "end_time": self.end_time,
                "update_time": self.update_time, "deadline": self.deadline,
                "owner": self.owner, "lease_expires_at": self.lease_expires_at,
                "cancel_requested": self.cancel_requested,
                "directives": self.directives.to_dict(),
                "idempotency_key": self.directives.idempotency_key or None}

    def mutable_row(self) -> dict[str, Any]:
        """The columns the owner rewrites; owner, lease and cancel flag are not among them."""
        return {"b_run_id": self.run_id, "status": self.status, "error": self.error,
                "retry_count": self.retry_count, "start_time": self.start_time,
                "end_time": self.end_time, "update_time": self.update_time,
                "deadline": self.deadline}

    @classmethod
    def from_rows(cls, run: Any, steps: list[Any], seq: int) -> RunState:
        state = cls(run_id=run.run_id, definition=WorkflowDef.from_dict(run.definition),
                    workflow_id=run.workflow_id, workflow_version=run.workflow_version,
                    input=run.input or {}, session_id=run.session_id, actor=run.actor,
                    request_id=run.request_id, status=run.status, error=run.error,
                    retry_count=run.retry_count, create_time=utc(run.create_time),
                    start_time=utc(run.start_time), end_time=utc(run.end_time),
                    update_time=utc(run.update_time), deadline=run.deadline, owner=run.owner,
                    lease_expires_at=run.lease_expires_at,
                    cancel_requested=bool(run.cancel_requested), seq=seq,
                    directives=RunDirectives.from_dict(run.directives))
        for row in sorted(steps, key=lambda r: r.position):
            state.steps[row.step_id] = StepState.from_row(row)
        return state

    def outputs(self) -> dict[str, Any]:
        return {sid: s.output for sid, s in self.steps.items() if s.output is not None}


@dataclass
class Changes:
    """What one state change of a run writes, in one transaction."""

    run_id: str
    fence: bool = True
    new_run: dict[str, Any] | None = None
    new_steps: list[dict[str, Any]] = field(default_factory=list)
    run: dict[str, Any] | None = None
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.new_run or self.run or self.steps or self.events)


class Recorder:
    """Applies transitions to a RunState and collects the rows and events they write."""

    def __init__(self, state: RunState, replica: str) -> None:
        self.state = state
        self.replica = replica
        self.changes = Changes(state.run_id)

    def take(self) -> Changes:
        changes, self.changes = self.changes, Changes(self.state.run_id)
        return changes

    def event(self, message: str, *, step: StepState | None = None,
              error: dict[str, Any] | None = None, now: dt.datetime | None = None) -> None:
        self.state.seq += 1
        self.changes.events.append({
            "run_id": self.state.run_id, "seq": self.state.seq,
            "step_id": step.step_id if step else "",
            "run_status": None if step else self.state.status,
            "step_status": step.status if step else None,
            "attempt": step.attempts if step else 0, "message": message, "error": error,
            "replica": self.replica, "create_time": now or utcnow()})

    def run(self, status: str, message: str, *, error: dict[str, Any] | None = None) -> None:
        state = self.state
        state.status = advance_run(state.run_id, state.status, status)
        now = state.update_time = utcnow()
        if error is not None:
            state.error = error
        self.changes.run = state.mutable_row()
        self.event(message, error=error, now=now)

    def step(self, step: StepState, status: str, message: str, *,
             error: dict[str, Any] | None = None, **fields: Any) -> None:
        step.status = advance_step(step.step_id, step.status, status)
        step.error = error
        for name, value in fields.items():
            setattr(step, name, value)
        self.changes.steps[step.step_id] = step.row(self.state.run_id)
        self.event(message, step=step, error=error)
