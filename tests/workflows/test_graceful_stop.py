"""A graceful stop of the orchestrator (SIGTERM) drains its runs: the worker calls
in flight finish within BATON_WORKFLOW_DRAIN_SECONDS and their outcomes are
committed, so a restart does not call those steps again; no step starts meanwhile.
A call that outlasts the drain is cancelled and resumed, as after a crash.

The step's method is served by a worker in the test's process that counts its
calls and answers only once the test lets it: once the orchestrator says it is
draining, or after its restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal

from pydantic import BaseModel

from baton.orchestrator.v1 import workflows_pb2 as pb
from baton_cli._process import ChildProcess
from baton_sdk import InvocationContext, Worker, WorkflowBuilder, method

from .conftest import events_of, orchestrator_process, start, steps_of, wait_run

# How long a stop may take before the test's SIGKILL: far past the server's grace
# and the drain, so that a slow machine does not turn a graceful stop into a kill.
STOP_WAIT = 30.0

S = pb.RunStep
R = pb.Run
DRAINING = "draining 1 runs"


class Value(BaseModel):
    value: int = 0


class Gated:
    """A method that records the idempotency key of each call and answers once the
    gate is open."""

    def __init__(self, name: str) -> None:
        self.keys: list[str] = []
        self.gate = asyncio.Event()
        self._called = asyncio.Event()

        @method(name)
        async def gated(params: Value, ctx: InvocationContext) -> Value:
            self.keys.append(ctx.idempotency_key)
            self._called.set()
            await self.gate.wait()
            return Value(value=params.value + 1)

        self.method = gated

    async def reached(self, calls: int) -> None:
        while len(self.keys) < calls:
            self._called.clear()
            await self._called.wait()


@contextlib.asynccontextmanager
async def gated_worker(cluster, name: str):
    gated = Gated(name)
    async with Worker([gated.method], registry_addr=cluster.addrs["registry"],
                      lease_ttl=5.0, shutdown_grace=0.5):
        yield gated


def gated_then_echo(name: str, method_name: str) -> pb.Workflow:
    return (WorkflowBuilder(name)
            .add_step(method_name, {"value": 1}, step_id="gated", timeout=30)
            .add_step("demo.echo", {"value": "${steps.gated.value}"}, step_id="after")
            .build())


async def until_draining_or_gone(child: ChildProcess, timeout: float = 15.0) -> bool:
    """Whether the orchestrator said it drains its runs before it exited."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if DRAINING in child.log_path.read_text():
            return True
        if not child.alive():
            return False
        await asyncio.sleep(0.05)  # another process's log: nothing to await
    raise TimeoutError("the orchestrator neither drained nor exited")


async def test_a_step_in_flight_at_a_graceful_stop_completes_and_is_not_called_again(
        cluster, databases):
    name = f"drained_{databases.backend}.gated"
    url = await databases.new_url_async("drained")
    orch = f"drained-{databases.backend}"
    env = {"BATON_REPLICA_ID": orch, "BATON_WORKFLOW_DRAIN_SECONDS": "8"}
    async with gated_worker(cluster, name) as gated:
        async with orchestrator_process(cluster, orch, url, **env) as (child, stub):
            run_id = (await start(stub, gated_then_echo("drained", name))).run_id
            await asyncio.wait_for(gated.reached(1), 20)
            assert child.proc is not None
            child.proc.send_signal(signal.SIGTERM)
            drained = await until_draining_or_gone(child)
            gated.gate.set()  # the call ends during the drain
            await asyncio.to_thread(child.stop, STOP_WAIT)
        log = child.log_path.read_text()
        async with orchestrator_process(cluster, orch, url, **env) as (_, stub):
            ended = await wait_run(stub, run_id, timeout=30)
            steps = await steps_of(stub, run_id)
            events = await events_of(stub, run_id)
    assert gated.keys == [f"{run_id}:gated"]  # one call: its outcome was committed
    assert drained and child.proc.returncode == 0
    assert "cancelling them" not in log
    assert ended.status == R.STATUS_SUCCEEDED, ended.error
    assert (steps["gated"].status, steps["gated"].attempts) == (S.STATUS_SUCCEEDED, 1)
    assert steps["after"].output["value"] == 2
    # The completion during the drain did not start its dependant: the restarted
    # orchestrator did.
    order = [(e.step_id, e.message.split(" by ")[0]) for e in events]
    assert order.index(("gated", "succeeded")) < order.index(("", "resumed")) \
        < order.index(("after", "attempt 1"))
    assert [m for s, m in order if s == "gated"] == ["attempt 1", "succeeded"]


async def test_a_step_that_outlasts_the_drain_is_cancelled_and_resumed(cluster, databases):
    name = f"outlasts_{databases.backend}.gated"
    url = await databases.new_url_async("outlasts")
    orch = f"outlasts-{databases.backend}"
    env = {"BATON_REPLICA_ID": orch, "BATON_WORKFLOW_DRAIN_SECONDS": "0.5"}
    async with gated_worker(cluster, name) as gated:
        async with orchestrator_process(cluster, orch, url, **env) as (child, stub):
            run_id = (await start(stub, gated_then_echo("outlasts", name))).run_id
            await asyncio.wait_for(gated.reached(1), 20)
            await asyncio.to_thread(child.stop, STOP_WAIT)  # SIGTERM; the call never ends
        log = child.log_path.read_text()
        gated.gate.set()
        async with orchestrator_process(cluster, orch, url, **env) as (_, stub):
            ended = await wait_run(stub, run_id, timeout=30)
            steps = await steps_of(stub, run_id)
            events = await events_of(stub, run_id)
    assert child.proc is not None and child.proc.returncode == 0
    assert DRAINING in log and "1 runs still had calls in flight after 0.5s" in log
    assert gated.keys == [f"{run_id}:gated"] * 2
    assert ended.status == R.STATUS_SUCCEEDED, ended.error
    assert (steps["gated"].status, steps["gated"].attempts) == (S.STATUS_SUCCEEDED, 2)
    assert [e.message for e in events if e.step_id == "gated"] == [
        "attempt 1", "attempt 2 (resumed after the previous owner stopped)", "succeeded"]


async def test_a_step_failing_during_the_drain_still_stops_a_stop_on_failure_run(
        cluster, databases):
    # The failure is committed while draining, before the steps it stops are skipped;
    # the next owner must still skip them rather than run them.
    name = f"fails_{databases.backend}.gated"
    gate, called = asyncio.Event(), asyncio.Event()

    @method(name)
    async def failing(params: Value, ctx: InvocationContext) -> Value:
        called.set()
        await gate.wait()
        raise ValueError("boom")

    url = await databases.new_url_async("fails")
    orch = f"fails-{databases.backend}"
    env = {"BATON_REPLICA_ID": orch, "BATON_WORKFLOW_DRAIN_SECONDS": "8"}
    wf = (WorkflowBuilder("fails").with_error_handling("stop_on_failure")
          .with_max_concurrency(1)
          .add_step(name, {"value": 1}, step_id="gated", timeout=30)
          .add_step("demo.echo", {"value": 5}, step_id="other").build())
    async with Worker([failing], registry_addr=cluster.addrs["registry"], lease_ttl=5.0,
                      shutdown_grace=0.5):
        async with orchestrator_process(cluster, orch, url, **env) as (child, stub):
            run_id = (await start(stub, wf)).run_id
            await asyncio.wait_for(called.wait(), 20)
            assert child.proc is not None
            child.proc.send_signal(signal.SIGTERM)
            assert await until_draining_or_gone(child)
            gate.set()  # it fails during the drain
            await asyncio.to_thread(child.stop, STOP_WAIT)
        async with orchestrator_process(cluster, orch, url, **env) as (_, stub):
            ended = await wait_run(stub, run_id, timeout=30)
            steps = await steps_of(stub, run_id)
    assert steps["gated"].status == S.STATUS_FAILED
    assert steps["other"].status == S.STATUS_SKIPPED, steps["other"]
    assert ended.status == R.STATUS_FAILED
