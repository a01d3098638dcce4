"""The Workflows gRPC service: protobuf in, engine and stores inside."""

from __future__ import annotations

import re
from collections import Counter, OrderedDict
from types import SimpleNamespace

from baton.orchestrator.v1 import workflows_pb2 as pb
from baton.orchestrator.v1 import workflows_pb2_grpc
from baton_core import (
    FailedPrecondition,
    InvalidArgument,
    PermissionDenied,
    access,
    bounded,
    check_enum,
    current_identity,
    decode_page_token,
    encode_page_token,
    page_size,
    require_json_numbers,
    struct_to_dict,
    timestamp_problems,
    timestamp_to_datetime,
)

from .._directives import MAX_KEY_CHARS
from .._policies import PolicyBook
from . import _constants as k
from ._convert import (
    definition_from_proto,
    directives_from_proto,
    event_to_proto,
    log_entry,
    merge_definition,
    run_status_name,
    run_to_proto,
    step_to_proto,
    update_paths,
    workflow_to_proto,
)
from ._definition import WorkflowDef
from ._engine import WorkflowEngine
from ._requests import CANCEL, RETRY, RunRequest
from ._states import SUCCEEDED
from ._store import ACTIVE, DELETED
from ._validation import validate

_WORKFLOW_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_STATUS = {pb.Workflow.STATUS_UNSPECIFIED: ACTIVE, pb.Workflow.STATUS_ACTIVE: ACTIVE,
           pb.Workflow.STATUS_DELETED: DELETED}
# CancelRun waits this long at most for the run to end when the caller set no deadline.
_CANCEL_WAIT = 10.0


def authorize_steps(defn, policies: PolicyBook, roles: tuple[str, ...]) -> None:
    """Refuses a run whose caller lacks the roles a policy requires for some step's
    method; every such step is named. Steps then dispatch as trusted calls."""
    denied = []
    for step in defn.steps:
        policy = policies.match(step.method)
        if not policy.allows(roles):
            denied.append((step.step_id, step.method, policy))
    if denied:
        listed = "; ".join(f"{sid} ({method}: policy {p.name} needs one of "
                           f"{', '.join(p.required_roles)})" for sid, method, p in denied)
        raise PermissionDenied(f"the caller lacks the roles for steps: {listed}",
                               reason="POLICY_ROLE_REQUIRED",
                               metadata={"steps": ",".join(sid for sid, _, _ in denied)})


def _required(value: str, field: str) -> str:
    if not value:
        raise InvalidArgument(f"{field} is required", violations=[(field, "is required")])
    return value


def _version(value: int, field: str) -> int:
    if value < 0:
        raise InvalidArgument(f"{field} must not be negative",
                              violations=[(field, "0 (the latest) or a version number")])
    return value


def _manages_any() -> bool:
    return bool(access.MANAGERS.intersection(current_identity().roles))


def _require_actor(run_id: str, actor: str) -> None:
    who = current_identity()
    if actor != who.subject and not _manages_any():
        raise PermissionDenied(
            f"{who.subject} may act only on the runs they started, not on {run_id} "
            f"(roles {', '.join(sorted(access.MANAGERS))} may act on any)",
            reason="RUN_NOT_OWNED", metadata={"run_id": run_id, "actor": who.subject})


def _run_request(request_id: str, run_id: str, operation: str) -> RunRequest | None:
    """The CancelRun or RetryRun of the caller, when it carries a request_id."""
    if not request_id:
        return None
    return RunRequest(request_id, run_id, operation, current_identity().subject)


class WorkflowsServicer(workflows_pb2_grpc.WorkflowsServicer):
    """Workflows: definitions (shared) and runs.

    With auth on (`owners_only`), a caller without admin, operator or service
    acts only on the runs it started (reads, watches, lists, cancels, retries);
    anything else is PERMISSION_DENIED.
    """

    def __init__(self, engine: WorkflowEngine, owners_only: bool = False) -> None:
        self._engine = engine
        self._owners_only = owners_only
        # Inline definitions converted lately, by their serialized form: a client
        # that starts the same inline workflow again and again gets one WorkflowDef
        # (and one Plan) for all its runs instead of a copy per run.
        self._inline: OrderedDict[bytes, WorkflowDef] = OrderedDict()

    # Definitions --------------------------------------------------------------------------

    async def CreateWorkflow(self, request, context):
        workflow_id = request.workflow.workflow_id
        if workflow_id and not _WORKFLOW_ID.match(workflow_id):
            raise InvalidArgument("workflow_id is not valid", violations=[(
                "workflow.workflow_id", "lower-case letters, digits, '_' and '-' (at most 63)")])
        defn = definition_from_proto(request.workflow)
        await validate(defn, self._engine.cache, "workflow")
        record = await self._engine.definitions.create(
            defn, workflow_id, bounded(request.request_id, "request_id", MAX_KEY_CHARS))
        return pb.CreateWorkflowResponse(workflow=workflow_to_proto(record))

    async def GetWorkflow(self, request, context):
        record = await self._engine.definitions.get(
            _required(request.workflow_id, "workflow_id"), _version(request.version, "version"))
        return pb.GetWorkflowResponse(workflow=workflow_to_proto(record))

    async def ListWorkflows(self, request, context):
        records, token = await self._engine.definitions.list(
            name=request.name,
            status=_STATUS[check_enum(pb.Workflow.Status, request.status, "status")],
            size=page_size(request.page_size, k.DEFAULT_PAGE_SIZE, k.MAX_PAGE_SIZE),
            token=request.page_token)
        return pb.ListWorkflowsResponse(workflows=[workflow_to_proto(r) for r in records],
                                        next_page_token=token)

    async def UpdateWorkflow(self, request, context):
        workflow_id = _required(request.workflow.workflow_id, "workflow.workflow_id")
        current = await self._engine.definitions.get(workflow_id)
        defn = merge_definition(current.definition, definition_from_proto(request.workflow),
                                update_paths(request.workflow, list(request.update_mask.paths)))
        await validate(defn, self._engine.cache, "workflow")
        if (defn == current.definition and current.status != DELETED
                and request.workflow.etag in ("", current.etag)):
            # Nothing changes: no new version (applying the same file twice is harmless).
            return pb.UpdateWorkflowResponse(workflow=workflow_to_proto(current))
        record = await self._engine.definitions.update(workflow_id, defn,
                                                       request.workflow.etag)
        return pb.UpdateWorkflowResponse(workflow=workflow_to_proto(record))

    async def DeleteWorkflow(self, request, context):
        record = await self._engine.definitions.delete(
            _required(request.workflow_id, "workflow_id"))
        return pb.DeleteWorkflowResponse(workflow=workflow_to_proto(record))

    async def ListWorkflowVersions(self, request, context):
        records, token = await self._engine.definitions.versions(
            _required(request.workflow_id, "workflow_id"),
            size=page_size(request.page_size, k.DEFAULT_PAGE_SIZE, k.MAX_PAGE_SIZE),
            token=request.page_token)
        return pb.ListWorkflowVersionsResponse(
            workflows=[workflow_to_proto(r) for r in records], next_page_token=token)

    # Runs ---------------------------------------------------------------------------------

    async def StartRun(self, request, context):
        async with self._engine.starting:
            return await self._start_run(request)

    async def _start_run(self, request):
        inline = request.HasField("definition")
        if inline == bool(request.workflow_id):
            raise InvalidArgument("set exactly one of workflow_id and definition", violations=[
                ("workflow_id", "set this or definition, not both and not neither")])
        if inline:
            defn = self._inline_definition(request.definition)
            # Every time: the methods it names may have changed since.
            await validate(defn, self._engine.cache, "definition")
            workflow_id, version = None, 0
        else:
            record = await self._engine.definitions.get(
                request.workflow_id, _version(request.workflow_version, "workflow_version"))
            if record.status == DELETED:
                raise FailedPrecondition(f"workflow {record.workflow_id} is deleted",
                                         reason="WORKFLOW_DELETED",
                                         metadata={"workflow_id": record.workflow_id})
            defn, workflow_id, version = record.definition, record.workflow_id, record.version
        directives = directives_from_proto(request.directives)
        bounded(request.request_id, "request_id", MAX_KEY_CHARS)
        if request.input.ByteSize() > k.MAX_INPUT_BYTES:
            raise InvalidArgument(
                f"input is {request.input.ByteSize():,} bytes; at most "
                f"{k.MAX_INPUT_BYTES:,} (pass large data by reference, e.g. a casefile id)",
                violations=[("input", f"at most {k.MAX_INPUT_BYTES:,} bytes")])
        require_json_numbers(struct_to_dict(request.input), "input")
        who = current_identity()
        authorize_steps(defn, self._engine.policies, who.roles)
        sessions = self._engine.sessions
        if request.session_id and sessions is not None:
            await sessions.require_active(request.session_id, 5.0)
        started = await self._engine.start_run(
            defn, workflow_id=workflow_id, version=version, input=struct_to_dict(request.input),
            session_id=request.session_id, request_id=request.request_id,
            actor=who.subject, directives=directives)
        if isinstance(started, str):  # an earlier StartRun with this request_id or key
            row, _ = await self._engine.runs.get(started)
            same = (row.actor == who.subject and (row.session_id or "") == request.session_id
                    and (row.input or {}) == struct_to_dict(request.input)
                    and (WorkflowDef.from_dict(row.definition) == defn if inline else
                         row.workflow_id == workflow_id and request.workflow_version in (
                             0, row.workflow_version)))
            if not same:
                # Another caller's, or other values: never hand over that run.
                what = "request_id" if request.request_id else "idempotency_key"
                raise FailedPrecondition(
                    f"{what} was already used to start another run; use a new one",
                    reason="REQUEST_ID_REUSED" if request.request_id
                    else "IDEMPOTENCY_KEY_REUSED", metadata={"field": what})
            return pb.StartRunResponse(run=await self._run(started))
        counts = Counter(step.status for step in started.steps.values())
        return pb.StartRunResponse(run=run_to_proto(SimpleNamespace(**started.row()),
                                                    dict(counts), with_definition=True))

    def _inline_definition(self, message: pb.Workflow) -> WorkflowDef:
        if message.ByteSize() > k.INLINE_DEFINITION_MAX_BYTES:  # not worth keeping
            return definition_from_proto(message, default_name="inline")
        key = message.SerializeToString(deterministic=True)
        defn = self._inline.get(key)
        if defn is None:
            defn = self._inline[key] = definition_from_proto(message, default_name="inline")
            if len(self._inline) > k.INLINE_DEFINITIONS_KEPT:
                self._inline.popitem(last=False)
        else:
            self._inline.move_to_end(key)
        return defn

    async def _run(self, run_id: str, check_owner: bool = False) -> pb.Run:
        """The run as the API shows it; with `check_owner`, after checking the caller may
        see it (on the row read anyway)."""
        row, steps = await self._engine.runs.get(run_id)
        if check_owner and self._owners_only:
            _require_actor(run_id, row.actor)
        counts: dict[str, int] = {}
        for step in steps:
            counts[step.status] = counts.get(step.status, 0) + 1
        outputs = {s.step_id: s.output for s in steps if s.status == SUCCEEDED}
        return run_to_proto(row, counts, outputs, with_definition=True)

    async def _owned(self, run_id: str) -> str:
        """`run_id`, required, after checking the caller may act on it."""
        _required(run_id, "run_id")
        if self._owners_only and not _manages_any():
            _require_actor(run_id, await self._engine.runs.actor_of(run_id))
        return run_id

    async def GetRun(self, request, context):
        return pb.GetRunResponse(run=await self._run(_required(request.run_id, "run_id"),
                                                     check_owner=True))

    async def ListRuns(self, request, context):
        times = [v for name in ("start_time", "end_time") if request.HasField(name)
                 for v in timestamp_problems(getattr(request, name), name)]
        if times:
            raise InvalidArgument("not a valid time", violations=times)
        since = timestamp_to_datetime(request.start_time) \
            if request.HasField("start_time") else None
        until = timestamp_to_datetime(request.end_time) if request.HasField("end_time") else None
        if since and until and since >= until:
            raise InvalidArgument("start_time must be before end_time",
                                  violations=[("end_time", "must be after start_time")])
        page, token = await self._engine.runs.list(
            workflow_id=request.workflow_id,
            statuses=[run_status_name(s) for s in request.statuses if s],
            since=since, until=until,
            size=page_size(request.page_size, k.DEFAULT_PAGE_SIZE, k.MAX_PAGE_SIZE),
            token=request.page_token,
            actor=current_identity().subject if self._owners_only and not _manages_any()
            else None)
        return pb.ListRunsResponse(runs=[run_to_proto(r, c) for r, c in page],
                                   next_page_token=token)

    async def ListRunSteps(self, request, context):
        _, steps = await self._engine.runs.get(await self._owned(request.run_id))
        return pb.ListRunStepsResponse(steps=[step_to_proto(s) for s in steps])

    async def CancelRun(self, request, context):
        request_id = bounded(request.request_id, "request_id", MAX_KEY_CHARS)
        run_id = await self._owned(request.run_id)
        left = context.time_remaining()
        wait = _CANCEL_WAIT if left is None else max(min(left - 0.2, _CANCEL_WAIT), 0)
        await self._engine.cancel_run(run_id, wait, _run_request(request_id, run_id, CANCEL))
        return pb.CancelRunResponse(run=await self._run(run_id))

    async def RetryRun(self, request, context):
        request_id = bounded(request.request_id, "request_id", MAX_KEY_CHARS)
        run_id = await self._owned(request.run_id)
        await self._engine.retry_run(run_id, _run_request(request_id, run_id, RETRY))
        return pb.RetryRunResponse(run=await self._run(run_id))

    async def WatchRun(self, request, context):
        async for row in self._engine.watch(await self._owned(request.run_id),
                                            request.after_sequence):
            yield pb.WatchRunResponse(event=event_to_proto(row))

    async def GetRunLogs(self, request, context):
        run_id = await self._owned(request.run_id)
        await self._engine.runs.status_and_seq(run_id)
        size = page_size(request.page_size, k.DEFAULT_LOG_PAGE_SIZE, k.MAX_LOG_PAGE_SIZE)
        scope = f"logs\0{run_id}"
        after = decode_page_token(request.page_token, scope, seq=int).get("seq", 0)
        rows = await self._engine.runs.events(run_id, after, size + 1)
        token = encode_page_token({"seq": rows[size - 1].seq}, scope) if len(rows) > size else ""
        return pb.GetRunLogsResponse(entries=[log_entry(r) for r in rows[:size]],
                                     next_page_token=token)
