"""Workflow definitions as plain values, and their JSON form in the store."""

from __future__ import annotations

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
    order; None when the dependencies have a cycle. Unknown ids are ignored."""
    ids = {s.step_id for s in steps}
    deps = {s.step_id: [d for d in s.depends_on if d in ids] for s in steps}
    order: list[str] = []
    placed: set[str] = set()
    while len(order) < len(deps):
        ready = [s.step_id for s in steps if s.step_id not in placed
                 and all(d in placed for d in deps[s.step_id])]
        if not ready:
            return None
        # One at a time keeps definition order wherever the graph allows it.
        order.append(ready[0])
        placed.add(ready[0])
    return order


def find_cycle(steps: tuple[StepDef, ...]) -> list[str]:
    """One dependency cycle as [a, b, ..., a], or [] when there is none."""
    ids = {s.step_id for s in steps}
    deps = {s.step_id: [d for d in s.depends_on if d in ids] for s in steps}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for dep in deps.get(node, ()):
            if state.get(dep) == 1:
                return [*path[path.index(dep):], dep]
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return []

    for step in steps:
        if step.step_id not in state:
            cycle = visit(step.step_id)
            if cycle:
                return cycle
    return []


def ancestors(steps: tuple[StepDef, ...], step_id: str) -> set[str]:
    """Every step `step_id` depends on, directly or not."""
    deps = {s.step_id: s.depends_on for s in steps}
    seen: set[str] = set()
    todo = list(deps.get(step_id, ()))
    while todo:
        dep = todo.pop()
        if dep not in seen and dep in deps:
            seen.add(dep)
            todo.extend(deps[dep])
    return seen
