"""Workflow definitions as plain values, and their JSON form in the store."""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format

from baton.registry.v1 import registry_pb2

from .._retry import Retry

SEQUENTIAL, PARALLEL, DAG = "sequential", "parallel", "dag"
STOP_ON_FAILURE, CONTINUE_ON_FAILURE = "stop_on_failure", "continue_on_failure"
EXECUTION_MODES = (SEQUENTIAL, PARALLEL, DAG)
ERROR_HANDLINGS = (STOP_ON_FAILURE, CONTINUE_ON_FAILURE)


@dataclass(frozen=True)
class StepDef:
    """One step: a method call with params that may hold references."""

    step_id: str
    method: str
    params: dict[str, Any] = field(default_factory=dict)
    depends_on: tuple[str, ...] = ()
    timeout: float | None = None
    retry: dict[str, Any] | None = None  # a baton.registry.v1.RetryPolicy as JSON

    def retry_policy(self) -> Retry | None:
        if self.retry is None:
            return None
        return Retry.from_proto(json_format.ParseDict(self.retry, registry_pb2.RetryPolicy()))

    def to_dict(self) -> dict[str, Any]:
        return {"step_id": self.step_id, "method": self.method, "params": self.params,
                "depends_on": list(self.depends_on), "timeout": self.timeout,
                "retry": self.retry}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StepDef:
        return cls(step_id=data["step_id"], method=data["method"],
                   params=dict(data.get("params") or {}),
                   depends_on=tuple(data.get("depends_on") or ()),
                   timeout=data.get("timeout"), retry=data.get("retry"))


@dataclass(frozen=True)
class WorkflowDef:
    """A whole definition; immutable once stored as a version."""

    name: str
    steps: tuple[StepDef, ...]
    description: str = ""
    execution_mode: str = SEQUENTIAL
    error_handling: str = STOP_ON_FAILURE
    timeout: float | None = None
    max_concurrency: int = 0
    metadata: dict[str, str] = field(default_factory=dict)

    def step(self, step_id: str) -> StepDef:
        index = self.__dict__.get("_by_id")
        if index is None:  # built on first use; the definition never changes
            index = {s.step_id: s for s in self.steps}
            object.__setattr__(self, "_by_id", index)
        return index[step_id]

    def plan(self) -> Plan:
        """The order and dependencies of the steps, worked out once per definition:
        every run of a definition shares them (see Plan)."""
        plan = self.__dict__.get("_plan")
        if plan is None:  # built on first use; the definition never changes
            plan = Plan(self)
            object.__setattr__(self, "_plan", plan)
        return plan

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description,
                "execution_mode": self.execution_mode, "error_handling": self.error_handling,
                "timeout": self.timeout, "max_concurrency": self.max_concurrency,
                "metadata": dict(self.metadata), "steps": [s.to_dict() for s in self.steps]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WorkflowDef:
        return cls(name=data["name"], description=data.get("description", ""),
                   execution_mode=data.get("execution_mode", SEQUENTIAL),
                   error_handling=data.get("error_handling", STOP_ON_FAILURE),
                   timeout=data.get("timeout"), max_concurrency=data.get("max_concurrency", 0),
                   metadata=dict(data.get("metadata") or {}),
                   steps=tuple(StepDef.from_dict(s) for s in data.get("steps", ())))


class Plan:
    """What an executor needs from a definition to schedule its steps: the order
    in which to consider them, the steps each one depends on, the step a
    sequential run must have ended first, and the concurrency mode (`limit`
    None: the engine's default)."""

    __slots__ = ("after", "limit", "needs", "order")

    def __init__(self, defn: WorkflowDef) -> None:
        self.order = tuple(topological_order(defn.steps) or [s.step_id for s in defn.steps])
        self.needs = {s.step_id: tuple(s.depends_on) for s in defn.steps}
        sequential = defn.execution_mode == SEQUENTIAL
        self.after = {sid: ((self.order[i - 1],) if sequential and i else ())
                      for i, sid in enumerate(self.order)}
        self.limit = 1 if sequential else (defn.max_concurrency or None)


def topological_order(steps: tuple[StepDef, ...]) -> list[str] | None:
    """Step ids with every step after its dependencies, else in definition
    order; None when the dependencies have a cycle. Unknown ids are ignored.

    Kahn's algorithm, taking the earliest step in definition order among those
    ready (which keeps definition order wherever the graph allows it):
    O((steps + edges) log steps).
    """
    position = {s.step_id: i for i, s in enumerate(steps)}
    waiting = {s.step_id: len({d for d in s.depends_on if d in position}) for s in steps}
    dependants: dict[str, list[str]] = {}
    for s in steps:
        for d in {d for d in s.depends_on if d in position}:
            dependants.setdefault(d, []).append(s.step_id)
    ready = [position[sid] for sid, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        sid = steps[heapq.heappop(ready)].step_id
        order.append(sid)
        for after in dependants.get(sid, ()):
            waiting[after] -= 1
            if waiting[after] == 0:
                heapq.heappush(ready, position[after])
    return order if len(order) == len(waiting) else None


def ancestor_masks(steps: tuple[StepDef, ...]) -> dict[str, int] | None:
    """For each step, the steps it depends on, directly or not, as a bit mask over
    definition positions (bit i: steps[i]); None when the dependencies have a
    cycle. One pass in dependency order: O(edges) operations on masks."""
    order = topological_order(steps)
    if order is None:
        return None
    position = {s.step_id: i for i, s in enumerate(steps)}
    by_id = {s.step_id: s for s in steps}
    masks: dict[str, int] = {}
    for sid in order:
        mask = 0
        for d in by_id[sid].depends_on:
            if d in masks:
                mask |= masks[d] | (1 << position[d])
        masks[sid] = mask
    return masks


def find_cycle(steps: tuple[StepDef, ...]) -> list[str]:
    """One dependency cycle as [a, b, ..., a], or [] when there is none (a depth-first
    walk with its own stack: a chain of a thousand steps is no deeper for Python)."""
    ids = {s.step_id for s in steps}
    deps = {s.step_id: [d for d in s.depends_on if d in ids] for s in steps}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for step in steps:
        if step.step_id in state:
            continue
        path = [step.step_id]
        state[step.step_id] = 1
        todo = [iter(deps.get(step.step_id, ()))]
        while todo:
            dep = next(todo[-1], None)
            if dep is None:
                todo.pop()
                state[path.pop()] = 2
            elif state.get(dep) == 1:
                return [*path[path.index(dep):], dep]
            elif dep not in state:
                state[dep] = 1
                path.append(dep)
                todo.append(iter(deps.get(dep, ())))
    return []
