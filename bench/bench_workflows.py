"""Durable workflows: latency of a 10-step sequential run, and throughput under load.

(a) a 10-step sequential workflow of trivial steps (demo.echo, each a real
gRPC call to the example worker), run one at a time: median end-to-end
latency (StartRun until WatchRun reports the end) and overhead per step
beyond a bare worker call; (b) 200 workflows started with 50 in flight, and
(c) 1,000 started at once: workflows/s, steps/s, peak RSS of the orchestrator,
and its RSS before (b), before (c) and 2 s after (c) and the reads of its runs;
then the same burst once more and the RSS after it, which shows whether what
(c) left is a level or a leak. On SQLite, and on PostgreSQL when
BATON_BENCH_POSTGRES_URL (or BATON_TEST_POSTGRES_URL) is set.

    python bench/bench_workflows.py [--runs 200] [--burst 1000] [--backend sqlite]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import grpc

from baton.orchestrator.v1 import workflows_pb2 as pb
from baton.orchestrator.v1 import workflows_pb2_grpc
from baton.provider.v1 import provider_pb2, provider_pb2_grpc
from baton_core import dict_to_struct
from baton_sdk import WorkflowBuilder

sys.path.insert(0, str(Path(__file__).parent))
from _harness import BenchPlatform  # noqa: E402

STEPS = 10
TERMINAL = {pb.Run.STATUS_SUCCEEDED, pb.Run.STATUS_FAILED, pb.Run.STATUS_CANCELLED,
            pb.Run.STATUS_PARTIAL}


class Load(NamedTuple):
    """What one load, (b) or (c), did."""

    workflows_per_s: float
    steps_per_s: float
    errors: int  # errors and failed runs
    peak_rss_kb: int


class Rss(NamedTuple):
    """The orchestrator's RSS in kB before (b), before (c), after (c), and after
    the same burst again."""

    baseline: int
    before_burst: int
    after: int
    again: int


@dataclass(frozen=True)
class WorkflowFigures:
    latency_ms: float
    p90_ms: float
    bare_ms: float
    overhead_per_step_ms: float
    c50: Load
    burst: Load
    burst_again_errors: int
    rss: Rss


def ten_steps() -> pb.Workflow:
    builder = WorkflowBuilder("bench_sequential")
    for i in range(STEPS):
        builder.add_step("demo.echo", {"value": i}, step_id=f"s{i}")
    return builder.build()


def rss_kb(pid: int) -> tuple[int, int]:
    """(current RSS, peak RSS) of a process in kB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def reset_peak(pid: int) -> None:
    try:  # Linux >= 4.0: writing 5 to clear_refs resets VmHWM.
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        pass


def Platform(directory: Path, database_url: str) -> BenchPlatform:  # noqa: N802
    """The shared bench platform with the orchestrator on `database_url`, auth off."""
    return BenchPlatform(directory, orchestrator_db=database_url)


async def run_once(stub, workflow: pb.Workflow) -> int:
    run = (await stub.StartRun(pb.StartRunRequest(definition=workflow,
                                                  request_id=uuid.uuid4().hex))).run
    status = 0
    async for reply in stub.WatchRun(pb.WatchRunRequest(run_id=run.run_id)):
        if reply.event.run_status in TERMINAL and not reply.event.step_id:
            status = reply.event.run_status
    return status


async def active_runs(stub) -> int:
    reply = await stub.ListRuns(pb.ListRunsRequest(
        statuses=[pb.Run.STATUS_PENDING, pb.Run.STATUS_RUNNING], page_size=500))
    return len(reply.runs)


async def bench(platform: BenchPlatform, runs: int, burst: int) -> WorkflowFigures:
    pid = platform.children["orchestrator"].pid
    assert pid is not None, "the platform is not started"
    workflow = ten_steps()
    async with grpc.aio.insecure_channel(platform.addrs["orchestrator"]) as channel, \
            grpc.aio.insecure_channel(platform.addrs["worker"]) as worker_channel:
        stub = workflows_pb2_grpc.WorkflowsStub(channel)
        worker = provider_pb2_grpc.MethodProviderStub(worker_channel)
        for _ in range(100):  # until the worker's methods are in the orchestrator's cache
            try:
                if await run_once(stub, workflow) == pb.Run.STATUS_SUCCEEDED:
                    break
            except grpc.aio.AioRpcError:
                pass
            await asyncio.sleep(0.2)
        for _ in range(30):
            await run_once(stub, workflow)
        invoke = provider_pb2.InvokeRequest(method="demo.echo",
                                            params=dict_to_struct({"value": 1}))
        bare = []
        for _ in range(500):
            started = time.perf_counter()
            await worker.Invoke(invoke)
            bare.append(time.perf_counter() - started)
        latencies = []
        for _ in range(100):
            started = time.perf_counter()
            assert await run_once(stub, workflow) == pb.Run.STATUS_SUCCEEDED
            latencies.append(time.perf_counter() - started)
        median = statistics.median(latencies)
        bare_ms = statistics.median(bare) * 1e3
        latency_ms = median * 1e3
        p90_ms = sorted(latencies)[int(0.9 * len(latencies))] * 1e3
        overhead_per_step_ms = (median * 1e3 - STEPS * bare_ms) / STEPS

        baseline, _ = rss_kb(pid)
        reset_peak(pid)
        failures = 0
        queue = list(range(runs))

        async def client() -> None:
            nonlocal failures
            while queue:
                queue.pop()
                failures += await run_once(stub, workflow) != pb.Run.STATUS_SUCCEEDED

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(50)))
        elapsed = time.perf_counter() - started
        c50 = Load(runs / elapsed, runs * STEPS / elapsed, failures, rss_kb(pid)[1])

        await asyncio.sleep(2.0)  # read as after (c): once the engine's idle trim ran
        before_burst, _ = rss_kb(pid)
        reset_peak(pid)
        elapsed, errors = await burst_of_runs(stub, workflow, burst)
        after, peak = rss_kb(pid)
        burst_load = Load(burst / elapsed, burst * STEPS / elapsed, errors, peak)
        # The same burst again: what the first left is a level, not a leak, when
        # the second adds nothing to it.
        _, burst_again_errors = await burst_of_runs(stub, workflow, burst)
        again, _ = rss_kb(pid)
        rss = Rss(baseline, before_burst, after, again)
    return WorkflowFigures(latency_ms, p90_ms, bare_ms, overhead_per_step_ms, c50, burst_load,
                           burst_again_errors, rss)


async def burst_of_runs(stub, workflow: pb.Workflow, burst: int) -> tuple[float, int]:
    """Starts `burst` runs at once and waits for them to end, then reads each one
    back (200 at a time) and waits 2 s, once the servers' idle trim ran. Returns
    the seconds until the last run ended, and the errors and failed runs."""
    started = time.perf_counter()
    replies = await asyncio.gather(*(
        stub.StartRun(pb.StartRunRequest(definition=workflow, request_id=uuid.uuid4().hex))
        for _ in range(burst)), return_exceptions=True)
    errors = sum(isinstance(r, Exception) for r in replies)
    while await active_runs(stub):
        await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - started
    ids = [r.run.run_id for r in replies if not isinstance(r, BaseException)]
    failed = 0
    for i in range(0, len(ids), 200):
        got = await asyncio.gather(*(stub.GetRun(pb.GetRunRequest(run_id=run_id))
                                     for run_id in ids[i:i + 200]))
        failed += sum(g.run.status != pb.Run.STATUS_SUCCEEDED for g in got)
    await asyncio.sleep(2.0)
    return elapsed, errors + failed


def report(backend: str, figures: WorkflowFigures, runs: int, burst: int) -> list[str]:
    c50, burst_f = figures.c50, figures.burst
    base, before_burst, after, again = figures.rss
    return [
        f"| {backend} | 10-step sequential, one at a time | median {figures.latency_ms:.1f} ms"
        f" (p90 {figures.p90_ms:.1f}) per workflow; {figures.overhead_per_step_ms:.2f} ms"
        f" overhead per step over a {figures.bare_ms:.2f} ms worker call | | |",
        f"| {backend} | {runs} workflows, 50 in flight | {c50[0]:,.0f} workflows/s, "
        f"{c50[1]:,.0f} steps/s | {c50[2]} | {c50[3] / 1024:.0f} MB |",
        f"| {backend} | {burst} workflows at once | {burst_f[0]:,.0f} workflows/s, "
        f"{burst_f[1]:,.0f} steps/s | {burst_f[2]} | {burst_f[3] / 1024:.0f} MB "
        f"(RSS {base / 1024:.0f} MB before (b), {before_burst / 1024:.0f} before (c), "
        f"{after / 1024:.0f} after, {again / 1024:.0f} after the same burst again "
        f"({figures.burst_again_errors} errors)) |",
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], action="append")
    args = parser.parse_args()
    pg = (os.environ.get("BATON_BENCH_POSTGRES_URL")
          or os.environ.get("BATON_TEST_POSTGRES_URL", "")).strip()
    backends = args.backend or (["sqlite", "postgres"] if pg else ["sqlite"])
    if "postgres" in backends and not pg:
        parser.error("--backend postgres needs BATON_BENCH_POSTGRES_URL (or "
                     "BATON_TEST_POSTGRES_URL), e.g. postgresql://postgres@127.0.0.1:5432/test")
    rows = []
    for backend in backends:
        with tempfile.TemporaryDirectory() as tmp:
            if backend == "sqlite":
                url = f"sqlite+aiosqlite:///{tmp}/orchestrator.db"
            else:
                url = asyncio.run(_fresh_pg_database(pg))
            platform = Platform(Path(tmp), url)
            try:
                platform.start()
                rows += report(backend, asyncio.run(bench(platform, args.runs, args.burst)),
                               args.runs, args.burst)
            finally:
                platform.stop()
                if backend == "postgres":
                    asyncio.run(_drop_pg_database(pg, url))
    print("\n## Durable workflows (each step a real gRPC call to the example worker)\n")
    print("| backend | load | result | errors | orchestrator peak RSS |")
    print("| --- | --- | --- | --- | --- |")
    print("\n".join(rows))


async def _fresh_pg_database(admin: str) -> str:
    import asyncpg

    name = f"baton_bench_{uuid.uuid4().hex[:8]}"
    dsn = admin.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + f"/{name}"


async def _drop_pg_database(admin: str, url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    finally:
        await conn.close()


if __name__ == "__main__":
    main()
