"""WorkflowsClient: typed async access to baton.orchestrator.v1.Workflows."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import grpc
from google.protobuf import field_mask_pb2

from baton.orchestrator.v1 import orchestrator_pb2, workflows_pb2_grpc
from baton.orchestrator.v1 import workflows_pb2 as pb
from baton_core import constants, dict_to_struct

from ._channel import ClientLifecycle

# CreateWorkflow, StartRun, CancelRun and RetryRun are retried because every call
# carries a request_id, which the retry repeats (the same request is sent again).
_IDEMPOTENT = [(constants.WORKFLOWS_SERVICE, name) for name in (
    "GetWorkflow", "ListWorkflows", "ListWorkflowVersions", "GetRun", "ListRuns",
    "ListRunSteps", "GetRunLogs", "CreateWorkflow", "StartRun", "CancelRun", "RetryRun")]
_ENDED = frozenset({pb.Run.STATUS_SUCCEEDED, pb.Run.STATUS_FAILED, pb.Run.STATUS_CANCELLED,
                    pb.Run.STATUS_PARTIAL})


class WorkflowsClient(ClientLifecycle):
    """Client of the orchestrator's Workflows service: definitions and runs.

    Every method raises the BatonError subclass matching the returned status.

    Takes the arguments of every client (see ClientLifecycle); address: the orchestrator.
    """

    idempotent = _IDEMPOTENT

    def _bind(self, channel: grpc.aio.Channel) -> None:
        self._stub = workflows_pb2_grpc.WorkflowsStub(channel)

    # Definitions ------------------------------------------------------------------------

    async def create_workflow(self, workflow: pb.Workflow, *, request_id: str = "",
                              timeout: float | None = None) -> pb.Workflow:
        """Stores a definition as version 1 (every problem in one InvalidArgument)."""
        request = pb.CreateWorkflowRequest(workflow=workflow,
                                           request_id=request_id or uuid.uuid4().hex)
        return (await self._conn.unary(self._stub.CreateWorkflow, request, timeout)).workflow

    async def update_workflow(self, workflow: pb.Workflow, *, timeout: float | None = None
                              ) -> pb.Workflow:
        """Stores `workflow` (with its workflow_id), whole, as the next version; one that
        changes nothing returns the latest as it is."""
        request = pb.UpdateWorkflowRequest(workflow=workflow,
                                           update_mask=field_mask_pb2.FieldMask(paths=["*"]))
        return (await self._conn.unary(self._stub.UpdateWorkflow, request, timeout)).workflow

    async def get_workflow(self, workflow_id: str, *, version: int = 0,
                           timeout: float | None = None) -> pb.Workflow:
        request = pb.GetWorkflowRequest(workflow_id=workflow_id, version=version)
        return (await self._conn.unary(self._stub.GetWorkflow, request, timeout)).workflow

    async def list_workflows(self, *, name: str = "", page_size: int = 0, page_token: str = "",
                             timeout: float | None = None) -> pb.ListWorkflowsResponse:
        """One page of workflows (latest versions); pass next_page_token back for more."""
        request = pb.ListWorkflowsRequest(name=name, page_size=page_size, page_token=page_token)
        return await self._conn.unary(self._stub.ListWorkflows, request, timeout)

    async def delete_workflow(self, workflow_id: str, *, timeout: float | None = None
                              ) -> pb.Workflow:
        request = pb.DeleteWorkflowRequest(workflow_id=workflow_id)
        return (await self._conn.unary(self._stub.DeleteWorkflow, request, timeout)).workflow

    # Runs -------------------------------------------------------------------------------

    async def start_run(self, workflow: pb.Workflow | str, *,
                        input: Mapping[str, Any] | None = None, version: int = 0,
                        session_id: str = "", request_id: str = "",
                        directives: orchestrator_pb2.Directives | None = None,
                        timeout: float | None = None) -> pb.Run:
        """Starts a run of an inline definition (a Workflow, e.g. from WorkflowBuilder)
        or of a stored workflow (its id); returns at once, before any step runs.

        A retried call with the same `request_id` (one is made when not given)
        returns the same run.
        """
        request = pb.StartRunRequest(input=dict_to_struct(dict(input or {})),
                                     session_id=session_id,
                                     request_id=request_id or uuid.uuid4().hex)
        if isinstance(workflow, str):
            request.workflow_id, request.workflow_version = workflow, version
        else:
            request.definition.CopyFrom(workflow)
        if directives is not None:
            request.directives.CopyFrom(directives)
        return (await self._conn.unary(self._stub.StartRun, request, timeout)).run

    async def get_run(self, run_id: str, *, timeout: float | None = None) -> pb.Run:
        return (await self._conn.unary(self._stub.GetRun, pb.GetRunRequest(run_id=run_id),
                                       timeout)).run

    async def list_runs(self, *, workflow_id: str = "",
                        statuses: Sequence[pb.Run.Status] = (), page_size: int = 0,
                        page_token: str = "", timeout: float | None = None
                        ) -> pb.ListRunsResponse:
        """One page of runs, newest first; pass next_page_token back for more."""
        request = pb.ListRunsRequest(workflow_id=workflow_id, statuses=list(statuses),
                                     page_size=page_size, page_token=page_token)
        return await self._conn.unary(self._stub.ListRuns, request, timeout)

    async def list_run_steps(self, run_id: str, *, timeout: float | None = None
                             ) -> list[pb.RunStep]:
        request = pb.ListRunStepsRequest(run_id=run_id)
        return list((await self._conn.unary(self._stub.ListRunSteps, request, timeout)).steps)

    async def cancel_run(self, run_id: str, *, request_id: str = "",
                         timeout: float | None = None) -> pb.Run:
        """Cancels a run: in-flight steps are cancelled, pending ones skipped.

        The channel retries the call on UNAVAILABLE with the same `request_id`
        (one is made when not given), so a retry of a cancel that landed returns
        the run instead of failing as an invalid transition; pass the same id to
        repeat the call yourself.
        """
        request = pb.CancelRunRequest(run_id=run_id, request_id=request_id or uuid.uuid4().hex)
        return (await self._conn.unary(self._stub.CancelRun, request, timeout)).run

    async def retry_run(self, run_id: str, *, request_id: str = "",
                        timeout: float | None = None) -> pb.Run:
        """Resumes a FAILED, PARTIAL or CANCELLED run; completed steps keep their outputs.

        Retried on UNAVAILABLE with the same `request_id`, as cancel_run is: the run
        is resumed once.
        """
        request = pb.RetryRunRequest(run_id=run_id, request_id=request_id or uuid.uuid4().hex)
        return (await self._conn.unary(self._stub.RetryRun, request, timeout)).run

    async def watch_run(self, run_id: str, *, after_sequence: int = 0
                        ) -> AsyncIterator[pb.RunEvent]:
        """Yields the run's events after `after_sequence`: past ones, then live ones,
        ending when the run ends."""
        request = pb.WatchRunRequest(run_id=run_id, after_sequence=after_sequence)
        stream = self._conn.stream(self._stub.WatchRun, request)
        try:
            async for response in stream:
                yield response.event
        finally:
            await stream.aclose()

    async def wait_run(self, run_id: str) -> pb.Run:
        """The run once it has ended (follows WatchRun to its end, then reads it).

        The stream, not its first ending event, says when: a retried run's replay
        holds the end it had before RetryRun.
        """
        while True:
            async for _ in self.watch_run(run_id):
                pass
            run = await self.get_run(run_id)
            if run.status in _ENDED:
                return run
            await asyncio.sleep(0.05)  # retried again meanwhile: follow it once more
