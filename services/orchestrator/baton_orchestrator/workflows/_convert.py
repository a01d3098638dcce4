"""Protobuf ⇄ workflow values, in one place."""

from __future__ import annotations

from typing import Any, cast

from google.protobuf import json_format

from baton.orchestrator.v1 import orchestrator_pb2
from baton.orchestrator.v1 import workflows_pb2 as pb
from baton.registry.v1 import registry_pb2
from baton_core import (
    InvalidArgument,
    check_enum,
    datetime_to_timestamp,
    dict_to_struct,
    duration_problems,
    duration_to_seconds,
    mask_paths,
    seconds_to_duration,
    set_timestamp,
    struct_to_dict,
)

from .._directives import check_directives
from ._definition import (
    CONTINUE_ON_FAILURE,
    DAG,
    PARALLEL,
    SEQUENTIAL,
    STOP_ON_FAILURE,
    StepDef,
    WorkflowDef,
)
from ._directives import RunDirectives
from ._records import utc
from ._states import FAILED, PARTIAL, RUNNING
from ._store import WorkflowRecord

_MODES = {pb.Workflow.EXECUTION_MODE_UNSPECIFIED: SEQUENTIAL,
          pb.Workflow.EXECUTION_MODE_SEQUENTIAL: SEQUENTIAL,
          pb.Workflow.EXECUTION_MODE_PARALLEL: PARALLEL, pb.Workflow.EXECUTION_MODE_DAG: DAG}
_MODES_OUT = {SEQUENTIAL: pb.Workflow.EXECUTION_MODE_SEQUENTIAL,
              PARALLEL: pb.Workflow.EXECUTION_MODE_PARALLEL, DAG: pb.Workflow.EXECUTION_MODE_DAG}
_HANDLING = {pb.Workflow.ERROR_HANDLING_UNSPECIFIED: STOP_ON_FAILURE,
             pb.Workflow.ERROR_HANDLING_STOP_ON_FAILURE: STOP_ON_FAILURE,
             pb.Workflow.ERROR_HANDLING_CONTINUE_ON_FAILURE: CONTINUE_ON_FAILURE}
_HANDLING_OUT = {STOP_ON_FAILURE: pb.Workflow.ERROR_HANDLING_STOP_ON_FAILURE,
                 CONTINUE_ON_FAILURE: pb.Workflow.ERROR_HANDLING_CONTINUE_ON_FAILURE}
MUTABLE_FIELDS = ("name", "description", "steps", "execution_mode", "error_handling",
                  "timeout", "max_concurrency", "metadata")


def _seconds(message: Any, field: str) -> float | None:
    return (duration_to_seconds(getattr(message, field)) or None) \
        if message.HasField(field) else None


def definition_from_proto(message: pb.Workflow, default_name: str = "") -> WorkflowDef:
    """The definition a message holds. Raises InvalidArgument for a duration out of
    protobuf's range, which could not be stored (or turned into JSON) at all."""
    bad = duration_problems(message.timeout, "workflow.timeout")
    for i, s in enumerate(message.steps):
        field = f"workflow.steps[{i}]"
        bad += duration_problems(s.timeout, f"{field}.timeout")
        bad += [v for name in ("initial_delay", "max_delay") for v in duration_problems(
            getattr(s.retry_policy, name), f"{field}.retry_policy.{name}")]
    if bad:
        raise InvalidArgument("invalid workflow: " + "; ".join(f"{f}: {d}" for f, d in bad),
                              reason="INVALID_WORKFLOW", violations=bad)
    steps = tuple(StepDef(
        step_id=s.step_id, method=s.method, params=struct_to_dict(s.params),
        depends_on=tuple(s.depends_on), timeout=_seconds(s, "timeout"),
        retry=json_format.MessageToDict(s.retry_policy, preserving_proto_field_name=True)
        if s.HasField("retry_policy") else None) for s in message.steps)
    return WorkflowDef(
        name=message.name or default_name, description=message.description, steps=steps,
        execution_mode=_MODES.get(message.execution_mode, str(message.execution_mode)),
        error_handling=_HANDLING.get(message.error_handling, str(message.error_handling)),
        timeout=_seconds(message, "timeout"), max_concurrency=message.max_concurrency,
        metadata=dict(message.metadata))


def update_paths(message: pb.Workflow, mask: list[str]) -> list[str]:
    """The fields an UpdateWorkflow changes (see baton_core.mask_paths)."""
    return mask_paths(mask, [f.name for f, _ in message.ListFields()], MUTABLE_FIELDS,
                      "definition")


def merge_definition(current: WorkflowDef, changed: WorkflowDef,
                     paths: list[str]) -> WorkflowDef:
    """`current` with the fields named in `paths` taken from `changed`."""
    unknown = [p for p in paths if p not in MUTABLE_FIELDS]
    if unknown:
        raise InvalidArgument("update_mask names fields that cannot change",
                              reason="INVALID_MASK",
                              violations=[("update_mask", f"unknown or immutable field {p!r}")
                                          for p in unknown])
    merged, new = current.to_dict(), changed.to_dict()
    for path in paths:
        merged[path] = new[path]
    return WorkflowDef.from_dict(merged)


def definition_to_proto(defn: WorkflowDef) -> pb.Workflow:
    message = pb.Workflow(
        name=defn.name, description=defn.description,
        execution_mode=_MODES_OUT[defn.execution_mode],
        error_handling=_HANDLING_OUT[defn.error_handling],
        max_concurrency=defn.max_concurrency, metadata=defn.metadata)
    if defn.timeout:
        message.timeout.CopyFrom(seconds_to_duration(defn.timeout))
    for step in defn.steps:
        out = message.steps.add(step_id=step.step_id, method=step.method,
                                depends_on=list(step.depends_on))
        out.params.CopyFrom(dict_to_struct(step.params))
        if step.timeout:
            out.timeout.CopyFrom(seconds_to_duration(step.timeout))
        if step.retry is not None:
            out.retry_policy.CopyFrom(json_format.ParseDict(step.retry,
                                                            registry_pb2.RetryPolicy()))
    return message


def workflow_to_proto(record: WorkflowRecord) -> pb.Workflow:
    message = definition_to_proto(record.definition)
    message.workflow_id = record.workflow_id
    message.version = record.version
    message.status = cast(pb.Workflow.Status, pb.Workflow.Status.Value(f"STATUS_{record.status}"))
    message.etag = record.etag
    message.create_time.CopyFrom(datetime_to_timestamp(record.create_time))
    message.update_time.CopyFrom(datetime_to_timestamp(record.update_time))
    if record.delete_time is not None:
        message.delete_time.CopyFrom(datetime_to_timestamp(record.delete_time))
    return message


def run_status(name: str) -> pb.Run.Status:
    return cast(pb.Run.Status, pb.Run.Status.Value(f"STATUS_{name}"))


def _step_status(name: str) -> pb.RunStep.Status:
    return cast(pb.RunStep.Status, pb.RunStep.Status.Value(f"STATUS_{name}"))


def run_status_name(value: int) -> str:
    """RUNNING for STATUS_RUNNING; INVALID_ARGUMENT for a number that is no status
    (protobuf enums are open: a caller may send 99)."""
    return pb.Run.Status.Name(check_enum(pb.Run.Status, value, "statuses")).removeprefix(
        "STATUS_")


def _error(value: dict[str, Any] | None) -> pb.RunError | None:
    if not value:
        return None
    return pb.RunError(code=value.get("code", ""), message=value.get("message", ""),
                       reason=value.get("reason", ""), step_id=value.get("step_id", ""))


def _set_time(message: Any, field: str, value: Any) -> None:
    if value is not None:
        set_timestamp(getattr(message, field), utc(value))


def run_to_proto(row: Any, counts: dict[str, int], outputs: dict[str, Any] | None = None,
                 with_definition: bool = False) -> pb.Run:
    message = pb.Run(
        run_id=row.run_id, workflow_id=row.workflow_id or "",
        workflow_version=row.workflow_version, workflow_name=row.workflow_name,
        status=run_status(row.status), session_id=row.session_id,
        request_id=row.request_id or "", retry_count=row.retry_count, owner=row.owner or "",
        step_counts=counts)
    message.input.CopyFrom(dict_to_struct(row.input))
    if outputs:
        message.output.CopyFrom(dict_to_struct(outputs))
    error = _error(row.error)
    if error is not None:
        message.error.CopyFrom(error)
    for field in ("create_time", "start_time", "end_time"):
        _set_time(message, field, getattr(row, field))
    if with_definition:
        message.definition.CopyFrom(definition_to_proto(WorkflowDef.from_dict(row.definition)))
    if row.directives:
        message.directives.CopyFrom(directives_to_proto(RunDirectives.from_dict(row.directives)))
    return message


def directives_from_proto(message: orchestrator_pb2.Directives) -> RunDirectives:
    check_directives(message)
    timeout = duration_to_seconds(message.timeout) if message.HasField("timeout") else None
    if timeout is not None and timeout < 0:
        raise InvalidArgument("timeout must not be negative",
                              violations=[("directives.timeout", "must be positive")])
    return RunDirectives(skip_hooks=tuple(message.skip_hooks), timeout=timeout or None,
                         dry_run=message.dry_run, idempotency_key=message.idempotency_key)


def directives_to_proto(directives: RunDirectives) -> orchestrator_pb2.Directives:
    message = orchestrator_pb2.Directives(
        skip_hooks=directives.skip_hooks, dry_run=directives.dry_run,
        idempotency_key=directives.idempotency_key)
    if directives.timeout:
        message.timeout.CopyFrom(seconds_to_duration(directives.timeout))
    return message


def step_to_proto(row: Any) -> pb.RunStep:
    message = pb.RunStep(
        run_id=row.run_id, step_id=row.step_id, method=row.method,
        status=_step_status(row.status), attempts=row.attempts,
        idempotency_key=f"{row.run_id}:{row.step_id}")
    if row.input is not None:
        message.input.CopyFrom(dict_to_struct(row.input))
    if row.output is not None:
        message.output.CopyFrom(dict_to_struct(row.output))
    error = _error(row.error)
    if error is not None:
        message.error.CopyFrom(error)
    _set_time(message, "start_time", row.start_time)
    _set_time(message, "end_time", row.end_time)
    return message


def event_to_proto(row: Any) -> pb.RunEvent:
    message = pb.RunEvent(sequence=row.seq, run_id=row.run_id, step_id=row.step_id,
                          attempt=row.attempt, message=row.message, replica=row.replica)
    if row.run_status:
        message.run_status = run_status(row.run_status)
    if row.step_status:
        message.step_status = _step_status(row.step_status)
    error = _error(row.error)
    if error is not None:
        message.error.CopyFrom(error)
    _set_time(message, "create_time", row.create_time)
    return message


def log_entry(row: Any) -> pb.LogEntry:
    status = row.run_status or row.step_status
    severity = (pb.LogEntry.SEVERITY_ERROR if status in (FAILED, PARTIAL)
                else pb.LogEntry.SEVERITY_WARNING if row.error or status == "CANCELLED"
                or (status == RUNNING and row.attempt > 1)
                else pb.LogEntry.SEVERITY_INFO)
    subject = f"step {row.step_id}" if row.step_id else "run"
    attempt = f" (attempt {row.attempt})" if row.step_id and row.attempt else ""
    entry = pb.LogEntry(sequence=row.seq, severity=severity, step_id=row.step_id,
                        text=f"{subject} {status}{attempt}: {row.message}")
    _set_time(entry, "time", row.create_time)
    return entry
