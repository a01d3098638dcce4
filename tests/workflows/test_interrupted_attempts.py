"""A step in flight when the orchestrator dies is called again after the resume,
on its last allowed attempt too, but only once past it: interrupted again on that
extra call, it fails, and the run goes on as after any failure.

The step's method is served by a worker in the test's process that counts its
calls and never answers, and the orchestrator is killed (SIGKILL) while each call
is in flight: a step that brings the orchestrator down whenever it is called.
Before, such a step was resumed forever.
"""

from __future__ import annotations

import asyncio
import contextlib

from pydantic import BaseModel

from baton.orchestrator.v1 import workflows_pb2 as pb
from baton_sdk import InvocationContext, RetryPolicy, Worker, WorkflowBuilder, method

from .conftest import events_of, orchestrator_process, start, steps_of, wait_run

S = pb.RunStep
R = pb.Run
# Each attempt's deadline: the kill lands well before it.
STEP_TIMEOUT = 10.0


class Nothing(BaseModel):
    pass


class Hanging:
    """A method that records the idempotency key of each call and never answers."""

    def __init__(self, name: str, retry: RetryPolicy | None = None) -> None:
        self.name = name
        self.keys: list[str] = []
        self._called = asyncio.Event()

        @method(name, retry=retry)
        async def hang(params: Nothing, ctx: InvocationContext) -> Nothing:
            self.keys.append(ctx.idempotency_key)
            self._called.set()
            await asyncio.Event().wait()  # until the caller goes away
            return Nothing()

        self.method = hang

    async def reached(self, calls: int) -> None:
        """Returns once the method has been called `calls` times."""
        while len(self.keys) < calls:
            self._called.clear()
            await self._called.wait()


@contextlib.asynccontextmanager
async def hanging_worker(cluster, name: str, retry: RetryPolicy | None = None):
    hanging = Hanging(name, retry)
    async with Worker([hanging.method], registry_addr=cluster.addrs["registry"],
                      lease_ttl=5.0, shutdown_grace=0.5):
        yield hanging


async def kill_when_called(cluster, name: str, url: str, hanging: Hanging, calls: int,
                           run: pb.Workflow | None = None) -> str:
    """Starts an orchestrator on `url` (and `run` on it, if given), kills it once the
    method has been called `calls` times in all; the run's id, if it started one."""
    async with orchestrator_process(cluster, name, url) as (child, stub):
        run_id = (await start(stub, run)).run_id if run is not None else ""
        await asyncio.wait_for(hanging.reached(calls), 20)
        child.kill()
    return run_id


async def step_messages(stub, run_id: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for event in await events_of(stub, run_id):
        found.setdefault(event.step_id, []).append(event.message)
    return found


async def test_a_step_interrupted_past_its_last_allowed_attempt_is_not_called_again(
        cluster, databases):
    name = f"poison_{databases.backend}.hang"
    url = await databases.new_url_async("poison")
    wf = (WorkflowBuilder("poison")
          .add_step(name, {}, step_id="poison", timeout=STEP_TIMEOUT,
                    retry={"strategy": "fixed", "max_attempts": 2, "initial_delay": "0.1s"})
          .add_step("demo.echo", {"value": 1}, step_id="after")
          .build())
    async with hanging_worker(cluster, name) as hanging:
        orch = f"poison-{databases.backend}"
        run_id = await kill_when_called(cluster, orch, url, hanging, 1, wf)
        # Resumed: the interrupted call was attempt 1 of 2, so one is left.
        await kill_when_called(cluster, orch + "-2", url, hanging, 2)
        # Interrupted on its last allowed attempt: it earns one call more.
        await kill_when_called(cluster, orch + "-3", url, hanging, 3)
        async with orchestrator_process(cluster, orch + "-4", url) as (_, stub):
            ended = await wait_run(stub, run_id, timeout=30)
            steps = await steps_of(stub, run_id)
            messages = await step_messages(stub, run_id)
    assert hanging.keys == [f"{run_id}:poison"] * 3
    poison = steps["poison"]
    assert (poison.status, poison.attempts) == (S.STATUS_FAILED, 3)
    assert (poison.error.code, poison.error.reason) == ("ABORTED", "LAST_ATTEMPT_INTERRUPTED")
    assert ("stopped during attempt 3, the one made after it stopped during the last its "
            "retry policy allows (max_attempts 2)") in poison.error.message
    assert steps["after"].status == S.STATUS_SKIPPED  # stop_on_failure
    assert (ended.status, ended.error.step_id, ended.error.reason) == (
        R.STATUS_FAILED, "poison", "LAST_ATTEMPT_INTERRUPTED")
    # One event per change of state.
    assert messages["poison"] == [
        "attempt 1", "attempt 2 (resumed after the previous owner stopped)",
        "attempt 3 (resumed after the previous owner stopped)",
        f"failed: ABORTED: {poison.error.message}"]
    assert messages["after"] == ["not run: the run is stopping after a failure"]
    assert [m.split(" by ")[0] for m in messages[""]] == [
        "run created", "started", "resumed", "resumed", "resumed",
        "1 step(s) failed; first: poison"]


async def test_a_step_whose_policy_allows_one_attempt_is_called_once_more_when_interrupted(
        cluster, databases):
    # The method's own policy (none), continue_on_failure: the run goes on without
    # the step, and ends PARTIAL.
    name = f"once_{databases.backend}.hang"
    url = await databases.new_url_async("once")
    wf = (WorkflowBuilder("once")
          .add_step(name, {}, step_id="once", timeout=STEP_TIMEOUT)
          .add_step("demo.echo", {"value": "${steps.once.value}"}, step_id="needs_it",
                    depends_on=["once"])
          .add_step("demo.echo", {"value": 2}, step_id="other")
          .with_error_handling("continue_on_failure")
          .build())
    async with hanging_worker(cluster, name, RetryPolicy.never()) as hanging:
        orch = f"once-{databases.backend}"
        run_id = await kill_when_called(cluster, orch, url, hanging, 1, wf)
        # A stop does not cost the step its call: it is made again, once.
        await kill_when_called(cluster, orch + "-2", url, hanging, 2)
        async with orchestrator_process(cluster, orch + "-3", url) as (_, stub):
            ended = await wait_run(stub, run_id, timeout=30)
            steps = await steps_of(stub, run_id)
            messages = await step_messages(stub, run_id)
    assert hanging.keys == [f"{run_id}:once"] * 2
    once = steps["once"]
    assert (once.status, once.attempts, once.error.reason) == (
        S.STATUS_FAILED, 2, "LAST_ATTEMPT_INTERRUPTED")
    assert ("stopped during attempt 2, the one made after it stopped during the last its "
            "retry policy allows (max_attempts 1)") in once.error.message
    assert messages["once"] == ["attempt 1",
                                "attempt 2 (resumed after the previous owner stopped)",
                                f"failed: ABORTED: {once.error.message}"]
    assert messages["needs_it"] == ["not run: dependency once is FAILED"]
    assert steps["other"].status == S.STATUS_SUCCEEDED
    assert steps["other"].output["value"] == 2
    assert ended.status == R.STATUS_PARTIAL
