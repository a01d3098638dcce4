"""Execution modes and error handling, against the real example worker."""

from __future__ import annotations

from baton.orchestrator.v1 import workflows_pb2 as pb
from baton.sessions.v1 import sessions_pb2
from baton_sdk import WorkflowBuilder

from .conftest import events_of, new_session, run_to_end

S = pb.RunStep
R = pb.Run


def max_in_flight(events: list[pb.RunEvent]) -> int:
    running, peak = set(), 0
    for event in events:
        if not event.step_id:
            continue
        if event.step_status == S.STATUS_RUNNING:
            running.add(event.step_id)
        else:
            running.discard(event.step_id)
        peak = max(peak, len(running))
    return peak


def started(steps: dict[str, pb.RunStep], step_id: str) -> float:
    return steps[step_id].start_time.ToNanoseconds() / 1e9


def ended(steps: dict[str, pb.RunStep], step_id: str) -> float:
    return steps[step_id].end_time.ToNanoseconds() / 1e9


async def test_sequential_runs_steps_one_after_another_in_order(stub):
    wf = WorkflowBuilder("seq")
    for i in range(4):
        wf.add_step("demo.sleep", {"seconds": 0.05}, step_id=f"s{i}")
    run, steps = await run_to_end(stub, wf.build())
    assert run.status == R.STATUS_SUCCEEDED
    for i in range(3):
        assert ended(steps, f"s{i}") <= started(steps, f"s{i + 1}")
    assert max_in_flight(await events_of(stub, run.run_id)) == 1
    assert run.step_counts["SUCCEEDED"] == 4


async def test_parallel_honours_its_concurrency_bound(stub):
    wf = WorkflowBuilder("par").with_execution_mode("parallel").with_max_concurrency(2)
    for i in range(5):
        wf.add_step("demo.sleep", {"seconds": 0.2}, step_id=f"p{i}")
    run, steps = await run_to_end(stub, wf.build())
    assert run.status == R.STATUS_SUCCEEDED
    assert max_in_flight(await events_of(stub, run.run_id)) == 2
    span = max(ended(steps, s) for s in steps) - min(started(steps, s) for s in steps)
    assert 0.55 < span < 2.0  # three waves of 0.2 s


async def test_dag_starts_a_step_once_all_its_dependencies_succeeded(stub):
    wf = (WorkflowBuilder("dag").with_execution_mode("dag")
          .add_step("demo.echo", {"value": "root"}, step_id="a")
          .add_step("demo.sleep", {"seconds": 0.3}, step_id="b", depends_on=["a"])
          .add_step("demo.sleep", {"seconds": 0.1}, step_id="c", depends_on=["a"])
          .add_step("demo.echo", {"value": "${steps.c.slept}"}, step_id="d", depends_on=["c"])
          .add_step("demo.echo", {"value": "end"}, step_id="e", depends_on=["b", "d"]))
    run, steps = await run_to_end(stub, wf.build())
    assert run.status == R.STATUS_SUCCEEDED
    assert started(steps, "b") < ended(steps, "c")          # b and c overlap
    assert started(steps, "d") < ended(steps, "b")          # d need not wait for b
    assert started(steps, "e") >= max(ended(steps, "b"), ended(steps, "d"))
    assert run.output["e"]["value"] == "end"


async def test_continue_on_failure_skips_only_dependants_and_ends_partial(stub):
    wf = (WorkflowBuilder("partial").with_execution_mode("dag")
          .with_error_handling("continue_on_failure")
          .add_step("demo.fail", {"message": "boom"}, step_id="bad")
          .add_step("demo.echo", {"value": 1}, step_id="child", depends_on=["bad"])
          .add_step("demo.echo", {"value": 2}, step_id="grandchild", depends_on=["child"])
          .add_step("demo.echo", {"value": 3}, step_id="other"))
    run, steps = await run_to_end(stub, wf.build())
    assert run.status == R.STATUS_PARTIAL
    assert steps["bad"].status == S.STATUS_FAILED
    assert "boom" in steps["bad"].error.message
    assert steps["child"].status == S.STATUS_SKIPPED
    assert steps["grandchild"].status == S.STATUS_SKIPPED
    assert steps["other"].status == S.STATUS_SUCCEEDED
    assert run.error.step_id == "bad"


async def test_continue_on_failure_with_nothing_succeeding_ends_failed(stub):
    wf = (WorkflowBuilder("allbad").with_execution_mode("parallel")
          .with_error_handling("continue_on_failure")
          .add_step("demo.fail", {}, step_id="x").add_step("demo.fail", {}, step_id="y"))
    run, _ = await run_to_end(stub, wf.build())
    assert run.status == R.STATUS_FAILED


async def test_sequential_continue_on_failure_runs_the_steps_after_a_failure(stub):
    wf = (WorkflowBuilder("seqcont").with_error_handling("continue_on_failure")
          .add_step("demo.fail", {}, step_id="x").add_step("demo.echo", {"value": 1},
                                                           step_id="y"))
    run, steps = await run_to_end(stub, wf.build())
    assert run.status == R.STATUS_PARTIAL and steps["y"].status == S.STATUS_SUCCEEDED


async def test_stop_on_failure_skips_what_has_not_started(stub):
    wf = (WorkflowBuilder("stop")
          .add_step("demo.echo", {"value": 1}, step_id="ok")
          .add_step("demo.fail", {"message": "no"}, step_id="bad")
          .add_step("demo.echo", {"value": 2}, step_id="never"))
    run, steps = await run_to_end(stub, wf.build())
    assert run.status == R.STATUS_FAILED
    assert [steps[s].status for s in ("ok", "bad", "never")] == [
        S.STATUS_SUCCEEDED, S.STATUS_FAILED, S.STATUS_SKIPPED]
    assert run.error.step_id == "bad" and run.error.code == "INTERNAL"


async def test_steps_go_through_dispatch_and_are_tracked_in_the_session(stub, orchestrator):
    session_id = await new_session(orchestrator)
    wf = (WorkflowBuilder("tracked").add_step("demo.echo", {"value": 1}, step_id="one")
          .add_step("demo.echo", {"value": 2}, step_id="two"))
    run, _ = await run_to_end(stub, wf.build(), session_id=session_id)
    assert run.status == R.STATUS_SUCCEEDED
    history = await orchestrator.sessions.ListSessionExecutions(
        sessions_pb2.ListSessionExecutionsRequest(session_id=session_id))
    tracked = {(e.run_id, e.step_id, e.operation) for e in history.executions}
    assert tracked == {(run.run_id, "one", "demo.echo"), (run.run_id, "two", "demo.echo")}
