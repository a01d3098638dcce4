"""CancelRun of in-flight steps, RetryRun from the failure, and invalid transitions."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest

from baton.orchestrator.v1 import workflows_pb2 as pb
from baton.sessions.v1 import sessions_pb2
from baton_core import dict_to_struct
from baton_sdk import WorkflowBuilder

from .conftest import error_details, new_session, start, steps_of, wait_run

S = pb.RunStep
R = pb.Run


async def wait_step_running(stub, run_id: str, step_id: str) -> None:
    async for reply in stub.WatchRun(pb.WatchRunRequest(run_id=run_id)):
        event = reply.event
        if event.step_id == step_id and event.step_status == S.STATUS_RUNNING:
            return
    raise AssertionError(f"{step_id} never ran")


async def test_cancel_ends_in_flight_steps_and_skips_pending_ones(stub):
    wf = (WorkflowBuilder("cancel").with_execution_mode("dag")
          .add_step("demo.echo", {"value": 1}, step_id="done")
          .add_step("demo.sleep", {"seconds": 30}, step_id="slow1", depends_on=["done"])
          .add_step("demo.sleep", {"seconds": 30}, step_id="slow2", depends_on=["done"])
          .add_step("demo.echo", {"value": 2}, step_id="later", depends_on=["slow1"]))
    run = await start(stub, wf.build())
    await asyncio.wait_for(wait_step_running(stub, run.run_id, "slow2"), 10)
    began = time.monotonic()
    cancelled = (await stub.CancelRun(pb.CancelRunRequest(run_id=run.run_id))).run
    assert time.monotonic() - began < 2
    assert cancelled.status == R.STATUS_CANCELLED
    steps = await steps_of(stub, run.run_id)
    assert steps["done"].status == S.STATUS_SUCCEEDED
    assert steps["slow1"].status == S.STATUS_CANCELLED
    assert steps["slow2"].status == S.STATUS_CANCELLED
    assert steps["later"].status == S.STATUS_SKIPPED


async def test_cancelling_an_ended_run_is_an_invalid_transition(stub):
    wf = WorkflowBuilder("ended").add_step("demo.echo", {"value": 1}, step_id="a")
    run = await wait_run(stub, (await start(stub, wf.build())).run_id)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.CancelRun(pb.CancelRunRequest(run_id=run.run_id))
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_details(info.value)[0] == "INVALID_TRANSITION"
    assert info.value.details() == (f"run {run.run_id} is SUCCEEDED: only a PENDING or "
                                    "RUNNING run can be cancelled")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.RetryRun(pb.RetryRunRequest(run_id=run.run_id))
    assert error_details(info.value)[0] == "INVALID_TRANSITION"
    assert info.value.details() == (f"run {run.run_id} is SUCCEEDED: only a FAILED, PARTIAL "
                                    "or CANCELLED run can be retried")


async def test_retry_resumes_a_failed_run_without_rerunning_completed_steps(stub,
                                                                            orchestrator):
    session_id = await new_session(orchestrator, {"topic": "kept"})
    wf = (WorkflowBuilder("resume").with_execution_mode("dag")
          .add_step("casefile.create", {"title": "retry me"}, step_id="create")
          .add_step("casefile.add_note", {"casefile_id": "${steps.create.casefile_id}",
                                          "text": "first"}, step_id="note1",
                    depends_on=["create"])
          .add_step("casefile.add_note", {"casefile_id": "${steps.create.casefile_id}",
                                          "text": "${context.second}"}, step_id="note2",
                    depends_on=["note1"])
          .add_step("casefile.list_notes", {"casefile_id": "${steps.create.casefile_id}"},
                    step_id="notes", depends_on=["note2"]))
    run = await wait_run(stub, (await start(stub, wf.build(), session_id=session_id)).run_id)
    assert run.status == R.STATUS_FAILED
    steps = await steps_of(stub, run.run_id)
    assert steps["note2"].error.reason == "UNRESOLVED_REFERENCE"
    assert "${context.second}" in steps["note2"].error.message
    assert steps["notes"].status == S.STATUS_SKIPPED

    await orchestrator.sessions.UpdateSessionContext(sessions_pb2.UpdateSessionContextRequest(
        session_id=session_id, values=dict_to_struct({"topic": "kept", "second": "second"})))
    retried = (await stub.RetryRun(pb.RetryRunRequest(run_id=run.run_id))).run
    assert retried.retry_count == 1
    assert retried.status in (R.STATUS_PENDING, R.STATUS_RUNNING, R.STATUS_SUCCEEDED)
    run = await wait_run(stub, run.run_id)
    assert run.status == R.STATUS_SUCCEEDED
    steps = await steps_of(stub, run.run_id)
    assert steps["create"].attempts == 1 and steps["note1"].attempts == 1
    texts = [n["text"] for n in run.output["notes"]["notes"]]
    assert texts == ["first", "second"]  # note1 was not added twice
    assert steps["note2"].output["note_count"] == 2


async def test_a_cancelled_run_can_be_retried(stub):
    wf = (WorkflowBuilder("cancel-then-retry")
          .add_step("demo.echo", {"value": 1}, step_id="a")
          .add_step("demo.sleep", {"seconds": "${input.pause}"}, step_id="b"))
    run = await start(stub, wf.build(), input={"pause": 30})
    await asyncio.wait_for(wait_step_running(stub, run.run_id, "b"), 10)
    await stub.CancelRun(pb.CancelRunRequest(run_id=run.run_id))
    await stub.RetryRun(pb.RetryRunRequest(run_id=run.run_id))
    await asyncio.wait_for(wait_step_running(stub, run.run_id, "b"), 10)
    run = (await stub.CancelRun(pb.CancelRunRequest(run_id=run.run_id))).run
    assert run.status == R.STATUS_CANCELLED and run.retry_count == 1
    steps = await steps_of(stub, run.run_id)
    assert steps["a"].attempts == 1 and steps["b"].attempts == 2
