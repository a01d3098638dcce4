"""WorkflowBuilder: workflow definitions in code, and the YAML/JSON form of files.

    workflow = (WorkflowBuilder("casefile_setup")
                .add_step("casefile.create", params={"title": "${input.title}"},
                          step_id="create")
                .add_step("casefile.add_note", step_id="note", depends_on=["create"],
                          params={"casefile_id": "${steps.create.casefile_id}",
                                  "text": "opened"})
                .with_execution_mode("dag")
                .with_error_handling("stop_on_failure")
                .with_timeout(60)
                .build())

`load_workflow("casefile_setup.yaml")` reads the same definition from a file
whose keys mirror the builder: name, description, execution_mode,
error_handling, timeout, max_concurrency, metadata, and steps with id,
method, params, depends_on, timeout and retry.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, cast

from google.protobuf import json_format

from baton.orchestrator.v1 import workflows_pb2 as pb
from baton_core import (
    dict_to_struct,
    duration_to_seconds,
    parse_yaml,
    seconds_to_duration,
    struct_to_dict,
)

from ._retry import RetryPolicy

ExecutionMode = Literal["sequential", "parallel", "dag"]
ErrorHandling = Literal["stop_on_failure", "continue_on_failure"]

_MODES = {"sequential": pb.Workflow.EXECUTION_MODE_SEQUENTIAL,
          "parallel": pb.Workflow.EXECUTION_MODE_PARALLEL,
          "dag": pb.Workflow.EXECUTION_MODE_DAG}
_HANDLING = {"stop_on_failure": pb.Workflow.ERROR_HANDLING_STOP_ON_FAILURE,
             "continue_on_failure": pb.Workflow.ERROR_HANDLING_CONTINUE_ON_FAILURE}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_seconds(value: float | int | str | None, field: str = "timeout") -> float | None:
    """Seconds from a number or a string such as `500ms`, `2s`, `1.5m`."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if match is None:
            raise ValueError(f"{field}: {value!r} is not a duration (e.g. 30, '500ms', '2m')")
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds < 0 or seconds != seconds or seconds == float("inf"):
        raise ValueError(f"{field}: must not be negative, not {value!r}")
    return seconds


_RETRY_KEYS = ("strategy", "max_attempts", "initial_delay", "max_delay", "multiplier",
               "retryable_codes")


def _retry(value: RetryPolicy | Mapping[str, Any] | None,
           where: str = "retry") -> RetryPolicy | None:
    if value is None or isinstance(value, RetryPolicy):
        return value
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: must be a mapping with keys from {', '.join(_RETRY_KEYS)}")
    unknown = sorted(str(key) for key in set(value) - set(_RETRY_KEYS))
    if unknown:
        raise ValueError(f"{where}: unknown keys: {', '.join(unknown)} "
                         f"(expected some of {', '.join(_RETRY_KEYS)})")
    fields = dict(value)
    for key in ("initial_delay", "max_delay"):
        if key in fields:
            fields[key] = parse_seconds(fields[key], f"{where}.{key}")
    for key, kinds, what in (("strategy", str, "a string"), ("max_attempts", int,
                             "a whole number"), ("multiplier", int | float, "a number")):
        if key in fields and (not isinstance(fields[key], kinds)
                              or isinstance(fields[key], bool)):
            raise ValueError(f"{where}.{key}: must be {what}")
    if "retryable_codes" in fields:
        codes = fields["retryable_codes"]
        codes = [codes] if isinstance(codes, str) else codes
        if not isinstance(codes, list | tuple) or not all(isinstance(c, str) for c in codes):
            raise ValueError(f"{where}.retryable_codes: must be a list of gRPC status code "
                             "names, e.g. [UNAVAILABLE]")
        fields["retryable_codes"] = tuple(codes)
    try:
        return RetryPolicy(**fields)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


class WorkflowBuilder:
    """Builds a `baton.orchestrator.v1.Workflow` step by step; every `with_*`
    and `add_step` returns the builder so calls chain."""

    def __init__(self, name: str, *, description: str = "", workflow_id: str = "") -> None:
        self._message = pb.Workflow(name=name, description=description,
                                    workflow_id=workflow_id)

    def add_step(self, method: str, params: Mapping[str, Any] | None = None, *,
                 step_id: str | None = None, depends_on: Iterable[str] = (),
                 timeout: float | str | None = None,
                 retry: RetryPolicy | Mapping[str, Any] | None = None) -> WorkflowBuilder:
        """Adds a call of `method`; `step_id` defaults to `step<N>` (N from 1).

        `params` are taken as JSON has them (dates become ISO 8601 text); a value
        JSON cannot hold, a bad timeout or retry raises ValueError and adds nothing.
        """
        where = f"steps[{len(self._message.steps)}]"
        if step_id and any(s.step_id == step_id for s in self._message.steps):
            raise ValueError(f"{where}.id: {step_id!r} is the id of an earlier step")
        struct = dict_to_struct(_json_value(dict(params or {}), f"{where}.params"))
        seconds = parse_seconds(timeout, f"{where}.timeout")
        policy = _retry(retry, f"{where}.retry")
        step = self._message.steps.add(
            step_id=step_id or f"step{len(self._message.steps) + 1}", method=method,
            depends_on=list(depends_on))
        step.params.CopyFrom(struct)
        if seconds:
            step.timeout.CopyFrom(seconds_to_duration(seconds))
        if policy is not None:
            step.retry_policy.CopyFrom(policy.to_proto())
        return self

    def with_execution_mode(self, mode: ExecutionMode) -> WorkflowBuilder:
        if mode not in _MODES:
            raise ValueError(f"execution mode must be one of {', '.join(_MODES)}")
        self._message.execution_mode = _MODES[mode]
        return self

    def with_error_handling(self, handling: ErrorHandling) -> WorkflowBuilder:
        if handling not in _HANDLING:
            raise ValueError(f"error handling must be one of {', '.join(_HANDLING)}")
        self._message.error_handling = _HANDLING[handling]
        return self

    def with_timeout(self, seconds: float | str) -> WorkflowBuilder:
        self._message.timeout.CopyFrom(seconds_to_duration(parse_seconds(seconds)))
        return self

    def with_max_concurrency(self, steps: int) -> WorkflowBuilder:
        if steps < 0:
            raise ValueError(f"max_concurrency: must be 0 (no bound) or more, not {steps}")
        self._message.max_concurrency = steps
        return self

    def with_description(self, description: str) -> WorkflowBuilder:
        self._message.description = description
        return self

    def with_metadata(self, **labels: str) -> WorkflowBuilder:
        self._message.metadata.update(labels)
        return self

    def build(self) -> pb.Workflow:
        """A copy of the definition built so far."""
        message = pb.Workflow()
        message.CopyFrom(self._message)
        return message


_WORKFLOW_KEYS = ("id", "workflow_id", "name", "description", "execution_mode",
                  "error_handling", "timeout", "max_concurrency", "metadata", "steps")
_STEP_KEYS = ("id", "step_id", "method", "params", "depends_on", "timeout", "retry")


def workflow_from_dict(data: Mapping[str, Any]) -> pb.Workflow:
    """The definition in a dict of the file form (see the module docstring).

    Values of the wrong shape raise one ValueError naming every place
    (`steps[1].params: must be a mapping`; several: `3 problems: ...; ...`);
    what only the orchestrator can judge (methods, schemas, the graph) is
    checked when the definition is sent.
    """
    if not isinstance(data, Mapping):
        raise ValueError("a workflow must be a mapping of keys such as name and steps")
    problems: list[str] = []

    def check(fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except ValueError as exc:
            problems.append(str(exc))
            return None

    unknown = sorted(str(key) for key in set(data) - set(_WORKFLOW_KEYS))
    if unknown:
        problems.append(f"unknown workflow keys: {', '.join(unknown)} "
                        f"(known: {', '.join(_WORKFLOW_KEYS)})")
    for key in ("id", "workflow_id", "name", "description", "execution_mode",
                "error_handling"):
        if data.get(key) is not None and not isinstance(data[key], str | int | float):
            problems.append(f"{key}: must be a string")
    builder = WorkflowBuilder(str(data.get("name") or ""),
                              description=str(data.get("description") or ""),
                              workflow_id=str(data.get("id") or data.get("workflow_id") or ""))
    steps = data.get("steps")
    if steps is not None and not isinstance(steps, list):
        problems.append("steps: must be a list of steps, each with at least a method")
    for index, step in enumerate(steps if isinstance(steps, list) else ()):
        problems.extend(_add_step(builder, step, f"steps[{index}]"))
    mode, handling = str(data.get("execution_mode") or ""), str(data.get("error_handling") or "")
    if mode and mode not in _MODES:
        problems.append(f"execution_mode: must be one of {', '.join(_MODES)}")
    elif mode:
        builder.with_execution_mode(cast(ExecutionMode, mode))
    if handling and handling not in _HANDLING:
        problems.append(f"error_handling: must be one of {', '.join(_HANDLING)}")
    elif handling:
        builder.with_error_handling(cast(ErrorHandling, handling))
    timeout = check(parse_seconds, data.get("timeout"), "timeout")
    if timeout is not None:
        builder.with_timeout(timeout)
    concurrency = data.get("max_concurrency")
    if concurrency is not None:
        if not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 0:
            problems.append("max_concurrency: must be a whole number, 0 or more")
        else:
            builder.with_max_concurrency(concurrency)
    metadata = data.get("metadata")
    if metadata:
        if not isinstance(metadata, Mapping):
            problems.append("metadata: must be a mapping of labels to values")
        else:
            builder.with_metadata(**{str(k): str(v) for k, v in metadata.items()})
    if len(problems) > 1:
        raise ValueError(f"{len(problems)} problems: " + "; ".join(problems))
    if problems:
        raise ValueError(problems[0])
    return builder.build()


def _add_step(builder: WorkflowBuilder, step: Any, where: str) -> list[str]:
    """Adds the step; the problems that kept it out (none when it was added)."""
    if not isinstance(step, Mapping):
        return _placeholder(builder, [f"{where}: must be a mapping with at least a method"])
    problems = []
    extra = sorted(str(key) for key in set(step) - set(_STEP_KEYS))
    if extra:
        problems.append(f"{where}: unknown keys: {', '.join(extra)} "
                        f"(known: {', '.join(_STEP_KEYS)})")
    method = step.get("method", "")
    if not isinstance(method, str):
        problems.append(f"{where}.method: must be a string")
    step_id = step.get("id") or step.get("step_id")
    if step_id is not None and not isinstance(step_id, str | int):
        problems.append(f"{where}.id: must be a string")
    params = step.get("params")
    if params is not None and not isinstance(params, Mapping):
        problems.append(f"{where}.params: must be a mapping")
    depends = step.get("depends_on") or ()
    depends = [depends] if isinstance(depends, str) else depends
    if not isinstance(depends, list | tuple) or not all(isinstance(d, str) for d in depends):
        problems.append(f"{where}.depends_on: must be a step id or a list of step ids")
    if problems:
        return _placeholder(builder, problems)
    try:
        builder.add_step(method, params, step_id=None if step_id is None else str(step_id),
                         depends_on=depends, timeout=step.get("timeout"),
                         retry=step.get("retry"))
    except ValueError as exc:
        return _placeholder(builder, [str(exc)])
    return []


def _placeholder(builder: WorkflowBuilder, problems: list[str]) -> list[str]:
    """Holds a bad step's place, so that the next steps' problems name their own
    index (the definition is refused anyway)."""
    builder.add_step("")
    return problems


def _json_value(value: Any, where: str) -> Any:
    """`value` as JSON has it: YAML's dates and times become ISO 8601 text and
    its non-text keys text (as Kubernetes reads YAML); what JSON cannot hold
    (NaN, infinities, binary, sets) raises ValueError naming where it is."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise ValueError(f"{where}: {value} is not a JSON number")
        return value
    if isinstance(value, dt.date):  # datetime included
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _json_value(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise ValueError(f"{where}: {type(value).__name__} values are not JSON")


def workflow_to_dict(message: pb.Workflow) -> dict[str, Any]:
    """The file form of a definition (the inverse of `workflow_from_dict`)."""
    out: dict[str, Any] = {"name": message.name}
    if message.workflow_id:
        out["id"] = message.workflow_id
    if message.description:
        out["description"] = message.description
    modes = {v: k for k, v in _MODES.items()}
    handling = {v: k for k, v in _HANDLING.items()}
    out["execution_mode"] = modes.get(message.execution_mode, "sequential")
    out["error_handling"] = handling.get(message.error_handling, "stop_on_failure")
    if message.HasField("timeout"):
        out["timeout"] = duration_to_seconds(message.timeout)
    if message.max_concurrency:
        out["max_concurrency"] = message.max_concurrency
    if message.metadata:
        out["metadata"] = dict(message.metadata)
    out["steps"] = []
    for step in message.steps:
        item: dict[str, Any] = {"id": step.step_id, "method": step.method,
                                "params": struct_to_dict(step.params)}
        if step.depends_on:
            item["depends_on"] = list(step.depends_on)
        if step.HasField("timeout"):
            item["timeout"] = duration_to_seconds(step.timeout)
        if step.HasField("retry_policy"):
            policy = RetryPolicy.from_proto(step.retry_policy)
            item["retry"] = {"strategy": policy.strategy, "max_attempts": policy.max_attempts,
                             "initial_delay": policy.initial_delay,
                             "max_delay": policy.max_delay, "multiplier": policy.multiplier,
                             "retryable_codes": list(policy.retryable_codes)}
        out["steps"].append(item)
    return out


def load_workflow(source: str | Path | Mapping[str, Any]) -> pb.Workflow:
    """A definition from a YAML or JSON file (by path), or from a dict.

    A file that cannot be read as one raises ValueError (OSError when it cannot
    be opened) whose message starts with the path and says where the problem is.
    """
    if isinstance(source, Mapping):
        return workflow_from_dict(source)
    path = Path(source)
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    try:
        data = _parse(path, text)
        if not isinstance(data, Mapping):
            raise ValueError("expected a mapping (name, steps, ...) at the top level")
        return workflow_from_dict(data)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    except RecursionError:
        raise ValueError(f"{path}: nested too deeply to read") from None


def _parse(path: Path, text: str) -> Any:
    if path.suffix.lower() != ".json":
        return parse_yaml(text)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc.msg} at line {exc.lineno}, "
                         f"column {exc.colno}") from None


def workflow_json(message: pb.Workflow) -> str:
    """The definition as protobuf JSON (what the HTTP gateway takes)."""
    return json_format.MessageToJson(message, preserving_proto_field_name=True)


__all__ = [
    "WorkflowBuilder",
    "load_workflow",
    "parse_seconds",
    "workflow_from_dict",
    "workflow_json",
    "workflow_to_dict",
]
