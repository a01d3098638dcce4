"""Crash recovery and replica handoff, with orchestrators as real processes.

The example worker's note counts prove that no completed step ran twice: a
repeated add_note with the same idempotency key adds nothing, and a re-run
completed step would come with a new key only if the engine were wrong.
"""

from __future__ import annotations

import asyncio
import re
import sys
import time

import grpc
import pytest

from baton.orchestrator.v1 import workflows_pb2 as pb
from baton.orchestrator.v1 import workflows_pb2_grpc
from baton_core import struct_to_dict
from baton_sdk import WorkflowBuilder

from .conftest import (
    events_of,
    orchestrator_process,
    run_named,
    start,
    steps_of,
    wait_in_flight,
    wait_run,
)

S = pb.RunStep
R = pb.Run
# Long enough that the kill lands while every run's pause step is in flight.
PAUSE = 2.0


def notes_workflow(pause: float) -> pb.Workflow:
    return (WorkflowBuilder("durable")
            .add_step("casefile.create", {"title": "${input.title}"}, step_id="create")
            .add_step("casefile.add_note", {"casefile_id": "${steps.create.casefile_id}",
                                            "text": "one"}, step_id="note1")
            .add_step("demo.sleep", {"seconds": pause}, step_id="pause")
            .add_step("casefile.add_note", {"casefile_id": "${steps.create.casefile_id}",
                                            "text": "two"}, step_id="note2")
            .add_step("casefile.list_notes", {"casefile_id": "${steps.create.casefile_id}"},
                      step_id="notes")
            .build())


async def assert_completed_exactly_once(stub, run_id: str, replica_prefix: str) -> None:
    run = await wait_run(stub, run_id, timeout=30)
    assert run.status == R.STATUS_SUCCEEDED, run.error
    steps = await steps_of(stub, run_id)
    assert [n["text"] for n in struct_to_dict(run.output)["notes"]["notes"]] == ["one", "two"]
    assert steps["note2"].output["note_count"] == 2
    assert steps["create"].attempts == 1 and steps["note1"].attempts == 1
    # The step in flight at the crash was tried again, under the same key.
    assert steps["pause"].attempts == 2
    assert steps["pause"].idempotency_key == f"{run_id}:pause"
    events = await events_of(stub, run_id)
    resumed = [e for e in events if "resumed" in e.message]
    assert resumed and all(e.replica.startswith(replica_prefix) for e in resumed)


async def test_killed_orchestrator_resumes_every_run_without_rerunning_steps(cluster,
                                                                            databases):
    url = await databases.new_url_async("crash")
    name = f"crash-{databases.backend}"
    async with orchestrator_process(cluster, name, url) as (child, stub):
        runs = [await start(stub, notes_workflow(PAUSE), input={"title": f"crash {i}"})
                for i in range(3)]
        await asyncio.wait_for(asyncio.gather(
            *(wait_in_flight(stub, r.run_id, "pause") for r in runs)), 15)
        child.kill()
    async with orchestrator_process(cluster, name + "-again", url) as (_, stub):
        for run in runs:
            steps = await steps_of(stub, run.run_id)
            assert steps["note1"].status == S.STATUS_SUCCEEDED
        await asyncio.gather(*(assert_completed_exactly_once(stub, r.run_id, "rep_")
                               for r in runs))


@pytest.fixture
def postgres_only(databases):
    if databases.backend != "postgres":
        pytest.skip("replicas share one PostgreSQL")


async def test_a_live_replica_takes_over_the_runs_of_a_killed_one(cluster, databases,
                                                                   postgres_only):
    url = await databases.new_url_async("replicas")
    async with orchestrator_process(cluster, "replica-b", url,
                                    BATON_REPLICA_ID="replica-b") as (_, stub_b):
        async with orchestrator_process(cluster, "replica-a", url,
                                        BATON_REPLICA_ID="replica-a") as (child_a, stub_a):
            runs = [await start(stub_a, notes_workflow(PAUSE), input={"title": f"handoff {i}"})
                    for i in range(4)]
            await asyncio.wait_for(asyncio.gather(
                *(wait_in_flight(stub_a, r.run_id, "pause") for r in runs)), 15)
            owners = {(await stub_b.GetRun(pb.GetRunRequest(run_id=r.run_id))).run.owner
                      for r in runs}
            assert owners == {"replica-a"}
            child_a.kill()
        await asyncio.gather(*(assert_completed_exactly_once(stub_b, r.run_id, "replica-b")
                               for r in runs))
        for run in runs:
            assert (await stub_b.GetRun(pb.GetRunRequest(run_id=run.run_id))).run.owner \
                == "replica-b"


async def nap_runs(stub, name: str, count: int, *, at_once: bool) -> list[str]:
    """`count` runs of one 1 s nap, started one by one or all at once, followed to
    their end (all succeed); the message of each run's first event."""
    workflow = WorkflowBuilder(name).add_step(
        "demo.sleep", {"seconds": 1.0}, step_id="nap").build()
    if at_once:
        runs = await asyncio.gather(*(start(stub, workflow) for _ in range(count)))
    else:
        runs = [await start(stub, workflow) for _ in range(count)]
    ended = await asyncio.gather(*(wait_run(stub, r.run_id, timeout=60) for r in runs))
    assert {r.status for r in ended} == {R.STATUS_SUCCEEDED}
    return [(await events_of(stub, r.run_id))[0].message for r in runs]


async def test_runs_queued_over_capacity_start_as_soon_as_there_is_room(cluster, databases):
    # Two runs driven, two waiting in memory, the rest recorded unowned. A 30 s
    # lease: the lease loop claims every 10 s, so only starting (and claiming)
    # on room lets these runs finish within a few seconds.
    url = await databases.new_url_async("capacity")
    async with orchestrator_process(cluster, f"capacity-{databases.backend}", url,
                                    BATON_MAX_ACTIVE_RUNS="2",
                                    BATON_RUN_LEASE_SECONDS="30") as (_, stub):
        # Each run naps long enough that none ends while the six are started.
        began = time.monotonic()
        notes = await nap_runs(stub, "capacity", 6, at_once=False)
        assert time.monotonic() - began < 8  # three waves of 1 s, not a 10 s lease round
        assert notes[:2] == ["run created"] * 2
        assert notes[2:4] == ["run created (waiting for room)"] * 2
        assert notes[4:] == ["run created (queued)"] * 2


async def test_queued_runs_are_claimed_in_batches(cluster, databases):
    # Ten runs driven, ten waiting in memory, the rest queued in SQL: the replica
    # claims those back in batches (half its limit at least, or what is left once
    # it has nothing to drive), not a write and a load for each run that ends.
    url = await databases.new_url_async("batches")
    async with orchestrator_process(cluster, f"batches-{databases.backend}", url,
                                    BATON_MAX_ACTIVE_RUNS="10",
                                    BATON_RUN_LEASE_SECONDS="30") as (child, stub):
        notes = await nap_runs(stub, "batches", 60, at_once=True)
        queued = notes.count("run created (queued)")
        assert queued >= 20
    log = child.log_path.read_text()
    claims = [int(n) for n in re.findall(r"claimed (\d+) queued runs", log)]
    resumed = log.count("resuming run")  # claimed by the lease loop instead, if any
    assert sum(claims) + resumed == queued
    assert len(claims) <= queued // 5 + 2, claims


async def test_starting_runs_take_turns_and_a_waiting_run_cancels_at_once(cluster, databases):
    url = await databases.new_url_async("turns")
    async with orchestrator_process(cluster, f"turns-{databases.backend}", url,
                                    BATON_MAX_ACTIVE_RUNS="1", BATON_MAX_STARTING_RUNS="1",
                                    BATON_RUN_LEASE_SECONDS="30") as (_, stub):
        slow = WorkflowBuilder("slow").add_step(
            "demo.sleep", {"seconds": 3}, step_id="nap").build()
        quick = WorkflowBuilder("quick").add_step(
            "demo.echo", {"value": 1}, step_id="echo").build()
        first = await start(stub, slow)
        await wait_in_flight(stub, first.run_id, "nap")
        # Started at once, one at a time: all recorded, none lost, none twice.
        others = await asyncio.gather(*(start(stub, quick) for _ in range(5)))
        assert len({r.run_id for r in others}) == 5
        waiting = others[0]
        assert (await stub.GetRun(pb.GetRunRequest(run_id=waiting.run_id))).run.status \
            == R.STATUS_PENDING
        began = time.monotonic()
        cancelled = (await stub.CancelRun(pb.CancelRunRequest(run_id=waiting.run_id))).run
        assert cancelled.status == R.STATUS_CANCELLED
        assert time.monotonic() - began < 2  # not after the slow run made room
        assert (await steps_of(stub, waiting.run_id))["echo"].status == S.STATUS_SKIPPED
        assert (await stub.GetRun(pb.GetRunRequest(run_id=first.run_id))).run.status \
            == R.STATUS_RUNNING
        ended = await asyncio.gather(*(wait_run(stub, r.run_id, timeout=20)
                                       for r in [first, *others[1:]]))
        assert {r.status for r in ended} == {R.STATUS_SUCCEEDED}


async def test_baton_run_follows_its_run_across_an_orchestrator_crash(cluster, databases,
                                                                      tmp_path):
    # The run outlives the crash; the CLI, which used to exit 2 with UNAVAILABLE,
    # reconnects and shows it to its end.
    url = await databases.new_url_async("cli-crash")
    child, address = cluster.orchestrator_process(
        f"cli-crash-{databases.backend}", url, {"BATON_REPLICA_ID": "cli-crash"})
    await asyncio.to_thread(child.start)
    path = tmp_path / "wf.yaml"
    name = f"cli_crash_{databases.backend}"
    path.write_text(f"name: {name}\nsteps:\n"
                    f"  - {{step_id: pause, method: demo.sleep, params: {{seconds: {PAUSE}}}}}\n"
                    "  - {step_id: after, method: demo.echo, params: {value: done}}\n")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "baton_cli", "run", str(path), "--orchestrator", address,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        async with grpc.aio.insecure_channel(address) as channel:
            stub = workflows_pb2_grpc.WorkflowsStub(channel)
            run_id = (await run_named(stub, name)).run_id
            await asyncio.wait_for(wait_in_flight(stub, run_id, "pause"), 15)
        await asyncio.sleep(0.3)  # the CLI is watching by now
        child.kill()
        await asyncio.to_thread(child.start)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
        await asyncio.to_thread(child.stop)
    assert proc.returncode == 0, err.decode()
    assert "run SUCCEEDED" in out.decode() and "2/2 steps done" in out.decode()
    assert "lost the orchestrator" in out.decode()  # said as it happened (a pipe: lines)


async def test_an_orchestrator_restarted_under_its_name_resumes_its_runs_before_the_lease_lapses(
        cluster, databases):
    # `baton up` restarts its orchestrator as "embedded": its runs go on at once.
    # Under a new name they would wait out their lease (10 s here) first.
    url = await databases.new_url_async("same-name")
    name = f"same-name-{databases.backend}"
    env = {"BATON_REPLICA_ID": name, "BATON_RUN_LEASE_SECONDS": "10"}
    async with orchestrator_process(cluster, name, url, **env) as (child, stub):
        run = await start(stub, notes_workflow(PAUSE), input={"title": "same name"})
        await asyncio.wait_for(wait_in_flight(stub, run.run_id, "pause"), 15)
        child.kill()
    async with orchestrator_process(cluster, name, url, **env) as (_, stub):
        restarted = time.monotonic()
        await assert_completed_exactly_once(stub, run.run_id, name)
        assert time.monotonic() - restarted < 8.0


async def test_a_repeated_cancel_or_retry_is_recognised_after_a_crash(cluster, databases):
    url = await databases.new_url_async("requests")
    name = f"requests-{databases.backend}"
    nap = WorkflowBuilder("requests").add_step("demo.sleep", {"seconds": 30},
                                               step_id="nap").build()
    cancel = pb.CancelRunRequest(request_id="cancel-before-the-crash")
    retry = pb.RetryRunRequest(request_id="retry-before-the-crash")
    async with orchestrator_process(cluster, name, url) as (child, stub):
        run = await start(stub, nap)
        cancel.run_id = retry.run_id = run.run_id
        await asyncio.wait_for(wait_in_flight(stub, run.run_id, "nap"), 15)
        assert (await stub.CancelRun(cancel)).run.status == R.STATUS_CANCELLED
        assert (await stub.RetryRun(retry)).run.retry_count == 1
        child.kill()
    async with orchestrator_process(cluster, name + "-again", url) as (_, stub):
        # Both answers were lost in the crash, say: the callers call again.
        assert (await stub.RetryRun(retry)).run.retry_count == 1
        again = (await stub.CancelRun(cancel)).run
        assert again.status in (R.STATUS_PENDING, R.STATUS_RUNNING)  # the retry goes on
        fresh = pb.CancelRunRequest(run_id=run.run_id, request_id="cancel-after-the-crash")
        ended = (await stub.CancelRun(fresh)).run
        assert (ended.status, ended.retry_count) == (R.STATUS_CANCELLED, 1)


async def test_a_step_in_flight_at_a_crash_spends_an_attempt_of_its_retry_policy(cluster,
                                                                                databases):
    # The interrupted call may have reached the worker: it counts as an attempt, so a
    # policy of 2 attempts makes 2 calls in all, the resumed one included.
    url = await databases.new_url_async("budget")
    name = f"budget-{databases.backend}"
    wf = WorkflowBuilder("budget").add_step(
        "demo.sleep", {"seconds": 30}, step_id="nap", timeout=3,
        retry={"strategy": "fixed", "max_attempts": 2, "initial_delay": "0.1s",
               "retryable_codes": ["DEADLINE_EXCEEDED"]}).build()
    async with orchestrator_process(cluster, name, url) as (child, stub):
        run = await start(stub, wf)
        await asyncio.wait_for(wait_in_flight(stub, run.run_id, "nap"), 15)
        child.kill()
    async with orchestrator_process(cluster, name + "-again", url) as (_, stub):
        ended = await wait_run(stub, run.run_id, timeout=30)
        nap = (await steps_of(stub, run.run_id))["nap"]
        messages = [e.message for e in await events_of(stub, run.run_id) if e.step_id == "nap"]
    assert ended.status == R.STATUS_FAILED
    assert (nap.attempts, nap.error.code) == (2, "DEADLINE_EXCEEDED")
    assert [m for m in messages if m.startswith("attempt")] == [
        "attempt 1", "attempt 2 (resumed after the previous owner stopped)"]
