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

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from google.protobuf import json_format

from baton.orchestrator.v1 import workflows_pb2 as pb
from baton_core import dict_to_struct, duration_to_seconds, seconds_to_duration, struct_to_dict

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
    if isinstance(value, int | float):
        return float(value)
    match = _DURATION.match(str(value))
    if match is None:
        raise ValueError(f"{field}: {value!r} is not a duration (e.g. 30, '500ms', '2m')")
    return float(match.group(1)) * _UNITS[match.group(2)]


def _retry(value: RetryPolicy | Mapping[str, Any] | None) -> RetryPolicy | None:
    if value is None or isinstance(value, RetryPolicy):
        return value
    fields = dict(value)
    for key in ("initial_delay", "max_delay"):
        if key in fields:
            fields[key] = parse_seconds(fields[key], key)
    if "retryable_codes" in fields:
        fields["retryable_codes"] = tuple(fields["retryable_codes"])
    return RetryPolicy(**fields)


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
        """Adds a call of `method`; `step_id` defaults to `step<N>` (N from 1)."""
        step = self._message.steps.add(
            step_id=step_id or f"step{len(self._message.steps) + 1}", method=method,
            depends_on=list(depends_on))
        step.params.CopyFrom(dict_to_struct(dict(params or {})))
        seconds = parse_seconds(timeout)
        if seconds:
            step.timeout.CopyFrom(seconds_to_duration(seconds))
        policy = _retry(retry)
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


def workflow_from_dict(data: Mapping[str, Any]) -> pb.Workflow:
    """The definition in a dict of the file form (see the module docstring)."""
    known = {"id", "workflow_id", "name", "description", "execution_mode", "error_handling",
             "timeout", "max_concurrency", "metadata", "steps"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown workflow keys: {', '.join(unknown)}")
    builder = WorkflowBuilder(str(data.get("name", "")), description=data.get("description", ""),
                              workflow_id=str(data.get("id") or data.get("workflow_id") or ""))
    for index, step in enumerate(data.get("steps") or ()):
        extra = sorted(set(step) - {"id", "step_id", "method", "params", "depends_on",
                                    "timeout", "retry"})
        if extra:
            raise ValueError(f"steps[{index}]: unknown keys: {', '.join(extra)}")
        depends = step.get("depends_on") or ()
        builder.add_step(step.get("method", ""), step.get("params"),
                         step_id=step.get("id") or step.get("step_id"),
                         depends_on=[depends] if isinstance(depends, str) else depends,
                         timeout=step.get("timeout"), retry=step.get("retry"))
    if data.get("execution_mode"):
        builder.with_execution_mode(data["execution_mode"])
    if data.get("error_handling"):
        builder.with_error_handling(data["error_handling"])
    if data.get("timeout") is not None:
        builder.with_timeout(data["timeout"])
    if data.get("max_concurrency"):
        builder.with_max_concurrency(int(data["max_concurrency"]))
    if data.get("metadata"):
        builder.with_metadata(**{str(k): str(v) for k, v in data["metadata"].items()})
    return builder.build()


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
    """A definition from a YAML or JSON file (by path), or from a dict."""
    if isinstance(source, Mapping):
        return workflow_from_dict(source)
    path = Path(source)
    text = path.read_text()
    if path.suffix.lower() == ".json":
        data = json.loads(text)
    else:
        import yaml

        data = yaml.safe_load(text)
    if not isinstance(data, Mapping):
        raise ValueError(f"{path}: expected a mapping at the top level")
    return workflow_from_dict(data)


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
