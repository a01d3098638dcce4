"""WorkflowsClient: what the README's WorkflowBuilder example builds, run from Python."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from baton.orchestrator.v1 import workflows_pb2 as pb
from baton.orchestrator.v1 import workflows_pb2_grpc
from baton_core import FailedPrecondition, InvalidArgument, struct_to_dict
from baton_sdk import WorkflowBuilder, WorkflowsClient


async def test_a_built_workflow_is_stored_run_watched_and_listed(orchestrator):
    name = f"sdk_setup_{orchestrator.backend}"
    built = (WorkflowBuilder(name)
             .add_step("casefile.create", params={"title": "${input.title}"}, step_id="create")
             .add_step("casefile.add_note", step_id="note", depends_on=["create"],
                       params={"casefile_id": "${steps.create.casefile_id}", "text": "hi"})
             .with_execution_mode("dag").with_error_handling("stop_on_failure")
             .with_timeout(60).build())
    async with WorkflowsClient(orchestrator.address) as client:
        inline = await client.start_run(built, input={"title": "From the SDK"})
        assert inline.status in (pb.Run.STATUS_PENDING, pb.Run.STATUS_RUNNING)
        events = [e async for e in client.watch_run(inline.run_id)]
        assert [e.step_id for e in events if e.step_status == pb.RunStep.STATUS_SUCCEEDED] \
            == ["create", "note"]
        ended = await client.get_run(inline.run_id)
        assert ended.status == pb.Run.STATUS_SUCCEEDED
        steps = {s.step_id: s for s in await client.list_run_steps(inline.run_id)}
        assert struct_to_dict(steps["note"].output)["note_count"] == 1

        stored = await client.create_workflow(built)
        assert (await client.update_workflow(stored)).version == 1  # nothing changed
        run = await client.start_run(stored.workflow_id, input={"title": "Stored"})
        done = await client.wait_run(run.run_id)
        assert (done.status, done.workflow_id) == (pb.Run.STATUS_SUCCEEDED, stored.workflow_id)
        listed = await client.list_runs(workflow_id=stored.workflow_id)
        assert [r.run_id for r in listed.runs] == [run.run_id]
        assert (await client.get_workflow(stored.workflow_id)).name == name
        deleted = await client.delete_workflow(stored.workflow_id)
        assert deleted.status == pb.Workflow.STATUS_DELETED

        with pytest.raises(InvalidArgument) as caught:  # the server's checks, as errors
            await client.start_run(WorkflowBuilder("bad").add_step("no.such").build())
        assert [f for f, _ in caught.value.violations] == ["definition.steps[0].method"]


async def test_cancel_and_retry_from_the_client(orchestrator):
    slow = WorkflowBuilder(f"sdk_slow_{orchestrator.backend}").add_step(
        "demo.sleep", {"seconds": 5}, step_id="nap").build()
    async with WorkflowsClient(orchestrator.address) as client:
        run = await client.start_run(slow)
        while (await client.get_run(run.run_id)).status != pb.Run.STATUS_RUNNING:
            await asyncio.sleep(0.05)
        cancelled = await client.cancel_run(run.run_id)
        assert cancelled.status == pb.Run.STATUS_CANCELLED
        with pytest.raises(FailedPrecondition):
            await client.cancel_run(run.run_id)
        failing = WorkflowBuilder("sdk_fail").add_step("demo.fail", {"message": "no"},
                                                       step_id="f").build()
        failed = await client.wait_run((await client.start_run(failing)).run_id)
        assert failed.status == pb.Run.STATUS_FAILED
        await client.retry_run(failed.run_id)
        again = await client.wait_run(failed.run_id)
        assert (again.status, again.retry_count) == (pb.Run.STATUS_FAILED, 1)


async def test_waiting_for_a_retried_run_waits_for_its_new_end(orchestrator):
    # The replay holds the end the run had before RetryRun; wait_run must not stop there.
    nap = WorkflowBuilder(f"sdk_nap_{orchestrator.backend}").add_step(
        "demo.sleep", {"seconds": 1}, step_id="nap").build()
    async with WorkflowsClient(orchestrator.address) as client:
        run = await client.start_run(nap)
        while (await client.get_run(run.run_id)).status != pb.Run.STATUS_RUNNING:
            await asyncio.sleep(0.05)
        await client.cancel_run(run.run_id)
        await client.retry_run(run.run_id)
        ended = await client.wait_run(run.run_id)
        assert (ended.status, ended.retry_count) == (pb.Run.STATUS_SUCCEEDED, 1)


class LossyWorkflows(workflows_pb2_grpc.WorkflowsServicer):
    """Takes each CancelRun, RetryRun, StartRun and CreateWorkflow, then answers its
    first call UNAVAILABLE: the call landed and its answer was lost."""

    def __init__(self) -> None:
        self.request_ids: list[str] = []

    async def _lossy(self, request, context, run_status):
        await self._lose_first(request, context)
        return pb.Run(run_id=request.run_id, status=run_status)

    async def CancelRun(self, request, context):
        return pb.CancelRunResponse(run=await self._lossy(request, context,
                                                          pb.Run.STATUS_CANCELLED))

    async def RetryRun(self, request, context):
        return pb.RetryRunResponse(run=await self._lossy(request, context,
                                                         pb.Run.STATUS_PENDING))

    async def _lose_first(self, request, context) -> None:
        self.request_ids.append(request.request_id)
        if self.request_ids.count(request.request_id) == 1:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "connection reset")

    async def StartRun(self, request, context):
        await self._lose_first(request, context)
        return pb.StartRunResponse(run=pb.Run(run_id=f"run_of_{request.request_id}"))

    async def CreateWorkflow(self, request, context):
        await self._lose_first(request, context)
        return pb.CreateWorkflowResponse(workflow=pb.Workflow(workflow_id="wf_1", version=1))


async def test_cancel_and_retry_are_retried_on_unavailable_with_their_request_id():
    lossy = LossyWorkflows()
    server = grpc.aio.server()
    workflows_pb2_grpc.add_WorkflowsServicer_to_server(lossy, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with WorkflowsClient(f"127.0.0.1:{port}", token="") as client:
            assert (await client.cancel_run("run_1")).status == pb.Run.STATUS_CANCELLED
            assert (await client.retry_run("run_1")).status == pb.Run.STATUS_PENDING
            assert (await client.cancel_run("run_1", request_id="mine")).run_id == "run_1"
            started = await client.start_run("wf_1")
            assert (await client.create_workflow(pb.Workflow(name="w"))).workflow_id == "wf_1"
    finally:
        await server.stop(None)
    (first, again, second, once_more, mine, mine_again, start, start_again, create,
     create_again) = lossy.request_ids
    assert first == again and second == once_more and mine == mine_again == "mine"
    assert start == start_again and started.run_id == f"run_of_{start}"
    assert create == create_again
    assert len({first, second, mine, start, create}) == 5 and all(lossy.request_ids)
