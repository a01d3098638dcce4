"""A run's events reach watchers in sequence order while its steps retry: a retry's
commit never overtakes the commit of the steps started just before it."""

from __future__ import annotations

import asyncio

from baton.orchestrator.v1 import workflows_pb2 as pb
from baton_sdk import WorkflowBuilder

from .conftest import start, wait_run

R = pb.Run


async def watched_sequences(stub, run_id: str, delay: float) -> list[int]:
    await asyncio.sleep(delay)
    return [r.event.sequence async for r in stub.WatchRun(pb.WatchRunRequest(run_id=run_id))]


async def test_watchers_get_contiguous_events_while_steps_retry(stub):
    # Flaky steps retry every few milliseconds while each completed echo starts the
    # next: a retry's commit lands right after the executor queues the starts.
    wf = WorkflowBuilder("retries_and_starts").with_execution_mode("parallel") \
        .with_max_concurrency(8)
    for i in range(4):
        wf.add_step("demo.fail", {"code": "UNAVAILABLE"}, step_id=f"flaky{i}", retry={
            "strategy": "fixed", "max_attempts": 60, "initial_delay": "0.005s",
            "retryable_codes": ["UNAVAILABLE"]})
    for i in range(80):
        wf.add_step("demo.echo", {"value": i}, step_id=f"echo{i}")
    runs = [await start(stub, wf.build()) for _ in range(8)]
    watched = await asyncio.wait_for(asyncio.gather(
        *(watched_sequences(stub, r.run_id, delay) for r in runs
          for delay in (0.0, 0.1, 0.3))), 60)
    for seqs in watched:
        assert seqs == list(range(1, len(seqs) + 1))
    for run in runs:  # the flaky steps give up in the end
        assert (await wait_run(stub, run.run_id)).status == R.STATUS_FAILED
