"""RetryRun against a run that ended again meanwhile: its steps are reset as they
are when the retry lands, not as they were when it was asked."""

from __future__ import annotations

import asyncio

from baton.orchestrator.v1 import workflows_pb2 as pb
from baton_sdk import WorkflowBuilder

from .conftest import start, steps_of, wait_run
from .test_cancel_and_retry_run import wait_step_running

S = pb.RunStep
R = pb.Run


async def test_a_late_retry_does_not_rerun_a_step_an_earlier_retry_completed(orchestrator,
                                                                           monkeypatch):
    stub, runs = orchestrator.stub, orchestrator.app.workflows.runs
    wf = (WorkflowBuilder("late_retry")
          .add_step("demo.sleep", {"seconds": 0.5}, step_id="nap")
          .add_step("demo.fail", {"code": "FAILED_PRECONDITION"}, step_id="boom")
          .build())
    run = await start(stub, wf)
    await asyncio.wait_for(wait_step_running(stub, run.run_id, "nap"), 10)
    await stub.CancelRun(pb.CancelRunRequest(run_id=run.run_id))
    assert (await steps_of(stub, run.run_id))["nap"].status == S.STATUS_CANCELLED

    # A slow RetryRun: it has read the run (nap CANCELLED) and has not written yet...
    read, go = asyncio.Event(), asyncio.Event()
    load = runs.load

    async def slow_load(run_id):
        state = await load(run_id)
        monkeypatch.setattr(runs, "load", load)
        read.set()
        await go.wait()
        return state

    monkeypatch.setattr(runs, "load", slow_load)
    late = asyncio.ensure_future(stub.RetryRun(pb.RetryRunRequest(run_id=run.run_id)))
    await asyncio.wait_for(read.wait(), 10)
    # ...while another one runs the run again: nap succeeds, boom fails again.
    await stub.RetryRun(pb.RetryRunRequest(run_id=run.run_id))
    again = await wait_run(stub, run.run_id)
    assert again.status == R.STATUS_FAILED
    assert (await steps_of(stub, run.run_id))["nap"].status == S.STATUS_SUCCEEDED
    go.set()
    await late
    ended = await wait_run(stub, run.run_id)
    assert ended.status == R.STATUS_FAILED and ended.retry_count == 2
    steps = await steps_of(stub, run.run_id)
    assert steps["nap"].status == S.STATUS_SUCCEEDED and steps["nap"].attempts == 2
    naps = [r.event for r in [r async for r in stub.WatchRun(pb.WatchRunRequest(
        run_id=run.run_id))] if r.event.step_id == "nap"]
    assert [e.step_status for e in naps].count(S.STATUS_SUCCEEDED) == 1
