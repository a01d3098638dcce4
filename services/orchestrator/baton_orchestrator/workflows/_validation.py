"""Validation of a definition: every problem at once, as (field, description) pairs."""

from __future__ import annotations

import re
from typing import Any

from google.protobuf import json_format

from baton.registry.v1 import registry_pb2
from baton_core import InvalidArgument, field_path, not_json_numbers

from .._directives import MAX_KEY_CHARS
from .._method_cache import MethodCache
from .._retry import retry_problems
from ._definition import (
    ERROR_HANDLINGS,
    EXECUTION_MODES,
    SEQUENTIAL,
    StepDef,
    WorkflowDef,
    ancestor_masks,
    find_cycle,
    topological_order,
)
from ._references import BadReference, has_reference, references_in

_STEP_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
MAX_STEPS = 1000

Violations = list[tuple[str, str]]


async def validate(defn: WorkflowDef, cache: MethodCache, prefix: str = "workflow") -> None:
    """Raises one INVALID_ARGUMENT listing every problem of `defn`."""
    problems = await violations(defn, cache, prefix)
    if problems:
        raise InvalidArgument(
            f"the workflow definition has {len(problems)} problem(s): "
            + "; ".join(f"{f}: {d}" for f, d in problems),
            reason="INVALID_WORKFLOW", violations=problems)


async def violations(defn: WorkflowDef, cache: MethodCache, prefix: str) -> Violations:
    out: Violations = []
    if not defn.name.strip():
        out.append((f"{prefix}.name", "is required"))
    elif len(defn.name) > MAX_KEY_CHARS:
        out.append((f"{prefix}.name", f"must be at most {MAX_KEY_CHARS} characters"))
    if defn.execution_mode not in EXECUTION_MODES:
        out.append((f"{prefix}.execution_mode", f"must be one of {', '.join(EXECUTION_MODES)}"))
    if defn.error_handling not in ERROR_HANDLINGS:
        out.append((f"{prefix}.error_handling", f"must be one of {', '.join(ERROR_HANDLINGS)}"))
    if defn.timeout is not None and defn.timeout < 0:
        out.append((f"{prefix}.timeout", "must not be negative"))
    if defn.max_concurrency < 0:
        out.append((f"{prefix}.max_concurrency", "must not be negative"))
    if not defn.steps:
        out.append((f"{prefix}.steps", "must hold at least one step"))
    if len(defn.steps) > MAX_STEPS:
        out.append((f"{prefix}.steps", f"must hold at most {MAX_STEPS} steps"))
        return out  # nothing step by step: that alone could take minutes
    out += _ids_and_dependencies(defn, prefix)
    reach = _Reach(defn)
    for index, step in enumerate(defn.steps):
        field = f"{prefix}.steps[{index}]"
        out += _step_limits(step, field)
        out += not_json_numbers(step.params, f"{field}.params")
        out += await _method_and_params(step, cache, field)
        out += _references(defn, index, field, reach)
    # The workflow's own fields first, then step by step (stable within each).
    return sorted(out, key=_step_index)


_STEP_FIELD = re.compile(r"\.steps\[(\d+)\]")


def _step_index(violation: tuple[str, str]) -> int:
    found = _STEP_FIELD.search(violation[0])
    return int(found.group(1)) if found else -1


def _ids_and_dependencies(defn: WorkflowDef, prefix: str) -> Violations:
    out: Violations = []
    seen: dict[str, int] = {}
    for index, step in enumerate(defn.steps):
        field = f"{prefix}.steps[{index}]"
        if not step.step_id:
            out.append((f"{field}.step_id", "is required"))
        elif not _STEP_ID.match(step.step_id):
            out.append((f"{field}.step_id", "must start with a letter or '_' and hold only "
                        "letters, digits, '_' and '-' (at most 64)"))
        elif step.step_id in seen:
            out.append((f"{field}.step_id",
                        f"duplicates the id of steps[{seen[step.step_id]}]: {step.step_id!r}"))
        else:
            seen[step.step_id] = index
    for index, step in enumerate(defn.steps):
        for d_index, dep in enumerate(step.depends_on):
            field = f"{prefix}.steps[{index}].depends_on[{d_index}]"
            if dep == step.step_id:
                out.append((field, "a step cannot depend on itself"))
            elif dep not in seen:
                out.append((field, f"names no step of this workflow: {dep!r}"))
            elif dep in step.depends_on[:d_index]:
                out.append((field, f"repeats {dep!r}"))
    cycle = find_cycle(tuple(s for s in defn.steps if s.step_id))
    if cycle:
        index = next(i for i, s in enumerate(defn.steps) if s.step_id == cycle[0])
        out.append((f"{prefix}.steps[{index}].depends_on",
                    "dependencies form a cycle: " + " -> ".join(cycle)))
    return out


def _step_limits(step: StepDef, field: str) -> Violations:
    out: Violations = []
    if step.timeout is not None and step.timeout < 0:
        out.append((f"{field}.timeout", "must not be negative"))
    if step.retry:
        try:
            policy = json_format.ParseDict(step.retry, registry_pb2.RetryPolicy())
        except json_format.ParseError as exc:
            return [*out, (f"{field}.retry_policy", f"is not a retry policy: {exc}")]
        out += retry_problems(policy, f"{field}.retry_policy")
    return out


async def _method_and_params(step: StepDef, cache: MethodCache, field: str) -> Violations:
    if not step.method:
        return [(f"{field}.method", "is required")]
    method = await cache.get(step.method)
    if method is None:
        return [(f"{field}.method", f"no method named {step.method!r} is registered")]
    literal, dropped = _literal_part(step.params, f"{field}.params")
    return [(f, d) for f, d in method.validator.violations(literal, f"{field}.params")
            if not any(f == p or f.startswith((p + ".", p + "[")) for p in dropped)]


def _literal_part(params: dict[str, Any], field: str) -> tuple[dict[str, Any], list[str]]:
    """Params without the values that hold references (resolved only at run time)."""
    literal: dict[str, Any] = {}
    dropped: list[str] = []
    for key, value in params.items():
        path = field_path(field, [key])
        if isinstance(value, dict) and has_reference(value):
            literal[key], inner = _literal_part(value, path)
            dropped += inner
        elif has_reference(value):
            dropped.append(path)
        else:
            literal[key] = value
    return literal, dropped


class _Reach:
    """Which steps a step may read: those it depends on (directly or not), and in
    sequential mode those the plan runs before it. Worked out once per definition."""

    def __init__(self, defn: WorkflowDef) -> None:
        self.position = {s.step_id: i for i, s in enumerate(defn.steps)}
        masks = ancestor_masks(defn.steps) or {}
        if defn.execution_mode == SEQUENTIAL:
            # Definition order, except that a step waits for what it depends on.
            order = topological_order(defn.steps) or [s.step_id for s in defn.steps]
            before = 0
            for sid in order:
                masks[sid] = masks.get(sid, 0) | before
                before |= 1 << self.position[sid]
        self.masks = masks

    def reaches(self, step_id: str, target: str) -> bool:
        return bool((self.masks.get(step_id, 0) >> self.position[target]) & 1)


def _references(defn: WorkflowDef, index: int, field: str, reach: _Reach) -> Violations:
    step = defn.steps[index]
    try:
        refs = references_in(step.params)
    except BadReference as exc:
        return [(f"{field}.params", f"bad reference {exc}")]
    out: Violations = []
    for ref in refs:
        target = ref.step_id
        if target is None:
            continue
        if target not in reach.position:
            out.append((f"{field}.params", f"${{{ref.text}}} names no step of this workflow"))
        elif not reach.reaches(step.step_id, target):
            out.append((f"{field}.params", f"${{{ref.text}}} reads step {target!r}, which is "
                        "not among this step's dependencies (add it to depends_on)"))
    return out
