"""WorkflowsClient: what the README's WorkflowBuilder example builds, run from Python."""

from __future__ import annotations

import asyncio

import pytest

from baton.orchestrator.v1 import workflows_pb2 as pb
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
