"""CancelRun of in-flight steps, RetryRun from the failure, invalid transitions, and
the request_ids that make a repeated CancelRun or RetryRun harmless."""

from __future__ import annotations

import asyncio
import time
import uuid

import grpc
import pytest

from baton.orchestrator.v1 import workflows_pb2 as pb
from baton.sessions.v1 import sessions_pb2
from baton_core import dict_to_struct
from baton_sdk import WorkflowBuilder

from .conftest import error_details, new_session, start, steps_of, wait_run

S = pb.RunStep
R = pb.Run


async def wait_step_running(stub, run_id: str, step_id: str, attempt: int = 0) -> None:
    """Until the step runs (its attempt number `attempt`, when given)."""
    async for reply in stub.WatchRun(pb.WatchRunRequest(run_id=run_id)):
        event = reply.event
        if event.step_id == step_id and event.step_status == S.STATUS_RUNNING \
                and attempt in (0, event.attempt):
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


def new_id(tag: str) -> str:
    return f"{tag}-{uuid.uuid4().hex}"


async def slow_run(stub, name: str) -> pb.Run:
    wf = WorkflowBuilder(name).add_step("demo.sleep", {"seconds": 30}, step_id="nap")
    run = await start(stub, wf.build())
    await asyncio.wait_for(wait_step_running(stub, run.run_id, "nap"), 10)
    return run


async def log_of(stub, run_id: str) -> list[pb.LogEntry]:
    """The run's events so far (WatchRun would wait for the run to end)."""
    return list((await stub.GetRunLogs(pb.GetRunLogsRequest(run_id=run_id))).entries)


async def cancel(stub, run_id: str, request_id: str = "", metadata=()) -> pb.Run:
    return (await stub.CancelRun(pb.CancelRunRequest(run_id=run_id, request_id=request_id),
                                 metadata=metadata)).run


async def retry(stub, run_id: str, request_id: str = "", metadata=()) -> pb.Run:
    return (await stub.RetryRun(pb.RetryRunRequest(run_id=run_id, request_id=request_id),
                                metadata=metadata)).run


async def test_a_repeated_cancel_answers_the_run_and_never_cancels_its_retry(stub):
    run = await slow_run(stub, "cancel-once")
    once = new_id("cancel")
    assert (await cancel(stub, run.run_id, once)).status == R.STATUS_CANCELLED
    events = await log_of(stub, run.run_id)
    again = await cancel(stub, run.run_id, once)  # its first answer was lost, say
    assert again.status == R.STATUS_CANCELLED
    assert await log_of(stub, run.run_id) == events
    # Retried since: a late repeat of that cancel answers, and the run goes on.
    await retry(stub, run.run_id, new_id("retry"))
    await asyncio.wait_for(wait_step_running(stub, run.run_id, "nap", attempt=2), 10)
    late = await cancel(stub, run.run_id, once)
    assert late.status == R.STATUS_RUNNING
    assert (await steps_of(stub, run.run_id))["nap"].status == S.STATUS_RUNNING
    assert (await cancel(stub, run.run_id)).status == R.STATUS_CANCELLED


async def test_a_repeated_retry_answers_the_run_and_retries_it_once(stub):
    wf = WorkflowBuilder("retry-once").add_step("demo.fail", {"message": "no"}, step_id="f")
    run = await wait_run(stub, (await start(stub, wf.build())).run_id)
    once = new_id("retry")
    await retry(stub, run.run_id, once)
    run = await wait_run(stub, run.run_id)
    assert (run.status, run.retry_count) == (R.STATUS_FAILED, 1)
    events = await log_of(stub, run.run_id)
    again = await retry(stub, run.run_id, once)
    assert (again.status, again.retry_count) == (R.STATUS_FAILED, 1)
    assert await log_of(stub, run.run_id) == events
    # Repeats racing each other (and the run failing again at once) retry it once too.
    twice = new_id("retry")
    answers = await asyncio.gather(*(retry(stub, run.run_id, twice) for _ in range(4)))
    assert {a.retry_count for a in answers} == {2}
    run = await wait_run(stub, run.run_id)
    assert (run.status, run.retry_count) == (R.STATUS_FAILED, 2)
    assert (await steps_of(stub, run.run_id))["f"].attempts == 3


async def test_a_request_id_reused_elsewhere_is_refused_and_changes_nothing(stub):
    first, other = await slow_run(stub, "reuse-first"), await slow_run(stub, "reuse-other")
    used = new_id("used")
    await cancel(stub, first.run_id, used)
    events = {r: await log_of(stub, r) for r in (first.run_id, other.run_id)}
    refusals = [
        cancel(stub, other.run_id, used),  # on another run
        retry(stub, first.run_id, used),  # for the other operation
        retry(stub, other.run_id, used),
    ]  # (by another caller: see test_run_authorization)
    for call in refusals:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call
        assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert error_details(info.value)[0] == "REQUEST_ID_REUSED"
    assert {r: await log_of(stub, r) for r in events} == events
    assert (await steps_of(stub, other.run_id))["nap"].status == S.STATUS_RUNNING
    await cancel(stub, other.run_id)


async def test_a_request_id_longer_than_255_characters_is_invalid(stub):
    run = await slow_run(stub, "long-request-id")
    for call in (cancel(stub, run.run_id, "k" * 256), retry(stub, run.run_id, "k" * 256)):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert [f for f, _ in error_details(info.value)[1]] == ["request_id"]
    assert (await steps_of(stub, run.run_id))["nap"].status == S.STATUS_RUNNING
    longest = new_id("c").ljust(255, "k")
    assert (await cancel(stub, run.run_id, longest)).status == R.STATUS_CANCELLED
    assert (await cancel(stub, run.run_id, longest)).status == R.STATUS_CANCELLED
    assert (await retry(stub, run.run_id, new_id("r").ljust(255, "k"))).retry_count == 1
    await cancel(stub, run.run_id)
