"""Directives on runs: stored with the run and applied to every step's call."""

from __future__ import annotations

import time

import grpc
import pytest
from google.protobuf import duration_pb2

from baton.orchestrator.v1 import orchestrator_pb2, policies_pb2, policies_pb2_grpc
from baton.orchestrator.v1 import workflows_pb2 as pb
from baton.sessions.v1 import sessions_pb2
from baton_sdk import WorkflowBuilder

from .conftest import new_session, run_to_end, start, steps_of, wait_run

S = pb.RunStep
R = pb.Run


def seconds(value: float) -> duration_pb2.Duration:
    duration = duration_pb2.Duration()
    duration.FromNanoseconds(int(value * 1e9))
    return duration


def directives(**fields) -> orchestrator_pb2.Directives:
    return orchestrator_pb2.Directives(**fields)


async def test_directives_are_stored_with_the_run(stub):
    wf = WorkflowBuilder("stored").add_step("demo.echo", {"value": 1}, step_id="a").build()
    given = directives(skip_hooks=["session_lifecycle"], timeout=seconds(5), dry_run=True)
    run = await start(stub, wf, directives=given)
    assert run.directives == given
    ended = await wait_run(stub, run.run_id)
    assert ended.directives == given
    listed = await stub.ListRuns(pb.ListRunsRequest(page_size=500))
    assert next(r for r in listed.runs if r.run_id == run.run_id).directives == given
    plain = await start(stub, wf)
    assert not plain.HasField("directives")


async def test_dry_run_validates_and_executes_nothing(stub, orchestrator):
    session_id = await new_session(orchestrator)
    wf = (WorkflowBuilder("dry").with_execution_mode("dag")
          .add_step("casefile.create", {"title": "${input.title}"}, step_id="create")
          .add_step("demo.fail", {"message": "would fail"}, step_id="fail")
          .add_step("demo.sleep", {"seconds": 5}, step_id="slow", depends_on=["create"])
          .add_step("casefile.add_note", {"casefile_id": "${steps.create.casefile_id}",
                                          "text": "x"}, step_id="note", depends_on=["create"])
          .add_step("demo.echo", {"value": 1}, step_id="after_note", depends_on=["note"]))
    began = time.monotonic()
    run, steps = await run_to_end(stub, wf.build(), input={"title": "t"},
                                  session_id=session_id, directives=directives(dry_run=True))
    assert time.monotonic() - began < 4  # demo.sleep 5s did not run
    assert run.status == R.STATUS_SUCCEEDED, run.error
    # A step that only depends on one the dry run skipped is dry-run as usual.
    for sid in ("create", "fail", "slow", "after_note"):
        assert steps[sid].status == S.STATUS_SUCCEEDED and dict(steps[sid].output) == {}
    # `${steps...}` references cannot read a dry run's outputs: skipped, not failed.
    assert steps["note"].status == S.STATUS_SKIPPED
    history = await orchestrator.sessions.ListSessionExecutions(
        sessions_pb2.ListSessionExecutionsRequest(session_id=session_id))
    assert list(history.executions) == []


async def test_dry_run_still_validates_params(stub):
    wf = WorkflowBuilder("dry-bad").add_step("demo.sleep", {"seconds": "${input.nap}"},
                                              step_id="nap")
    run, steps = await run_to_end(stub, wf.build(), input={"nap": "not a number"},
                                  directives=directives(dry_run=True))
    assert run.status == R.STATUS_FAILED
    assert steps["nap"].error.code == "INVALID_ARGUMENT"


async def test_timeout_directive_bounds_every_step(stub):
    wf = (WorkflowBuilder("bounded").with_error_handling("continue_on_failure")
          .add_step("demo.sleep", {"seconds": 3}, step_id="long")
          .add_step("demo.sleep", {"seconds": 0.05}, step_id="short"))
    began = time.monotonic()
    run, steps = await run_to_end(stub, wf.build(), directives=directives(timeout=seconds(0.3)))
    assert time.monotonic() - began < 2.5
    assert steps["long"].status == S.STATUS_FAILED
    assert steps["long"].error.code == "DEADLINE_EXCEEDED"
    assert steps["short"].status == S.STATUS_SUCCEEDED
    assert run.status == R.STATUS_PARTIAL


async def test_timeout_directive_never_extends_a_step_timeout(stub):
    wf = WorkflowBuilder("not-extended").add_step("demo.sleep", {"seconds": 3},
                                                  step_id="long", timeout=0.3).build()
    began = time.monotonic()
    _, steps = await run_to_end(stub, wf, directives=directives(timeout=seconds(30)))
    assert time.monotonic() - began < 2.5
    assert steps["long"].error.code == "DEADLINE_EXCEEDED"


async def test_negative_timeout_directive_is_refused(stub):
    wf = WorkflowBuilder("neg").add_step("demo.echo", {"value": 1}, step_id="a").build()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await start(stub, wf, directives=directives(timeout=duration_pb2.Duration(seconds=-1)))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_skip_hooks_reaches_every_step(stub, orchestrator):
    channel = grpc.aio.insecure_channel(orchestrator.address)
    policies = policies_pb2_grpc.PolicyEngineStub(channel)
    name = f"wf-skippable-{orchestrator.backend}"
    await policies.CreatePolicy(policies_pb2.CreatePolicyRequest(policy=policies_pb2.Policy(
        name=name, pattern="demo.echo", hooks=["metrics", "audit", "session_lifecycle"],
        skippable_hooks=["session_lifecycle"])))
    try:
        session_id = await new_session(orchestrator)
        wf = (WorkflowBuilder("skip").add_step("demo.echo", {"value": 1}, step_id="one")
              .add_step("demo.echo", {"value": 2}, step_id="two")
              .add_step("demo.sleep", {"seconds": 0}, step_id="other"))
        run, _ = await run_to_end(
            stub, wf.build(), session_id=session_id,
            directives=directives(skip_hooks=["session_lifecycle"]))
        assert run.status == R.STATUS_SUCCEEDED, run.error
        history = await orchestrator.sessions.ListSessionExecutions(
            sessions_pb2.ListSessionExecutionsRequest(session_id=session_id))
        # Skipped where the policy allows it (demo.echo), not elsewhere (demo.sleep).
        assert [e.step_id for e in history.executions] == ["other"]
    finally:
        await policies.DeletePolicy(policies_pb2.DeletePolicyRequest(name=name))
        await channel.close()


async def test_idempotency_key_returns_the_same_run(stub):
    wf = WorkflowBuilder("idem").add_step("demo.echo", {"value": 1}, step_id="a").build()
    key = f"key-{time.time_ns()}"
    first = await start(stub, wf, directives=directives(idempotency_key=key))
    again = await start(stub, wf, directives=directives(idempotency_key=key))
    assert again.run_id == first.run_id
    other = await start(stub, wf, directives=directives(idempotency_key=key + "-2"))
    assert other.run_id != first.run_id
    await wait_run(stub, first.run_id)
    # Once ended, the key still returns it; its steps ran once.
    ended = await start(stub, wf, directives=directives(idempotency_key=key))
    assert ended.run_id == first.run_id and ended.status == R.STATUS_SUCCEEDED
    assert (await steps_of(stub, first.run_id))["a"].attempts == 1
