"""Real services for the workflow tests.

Registry, sessions and the example worker run as subprocesses once per test
session; each backend (SQLite, and PostgreSQL when configured) gets one
in-process orchestrator on a real port. Crash and replica tests start their
own orchestrator processes with `Cluster.orchestrator_process`.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from baton.orchestrator.v1 import workflows_pb2 as pb
from baton.orchestrator.v1 import workflows_pb2_grpc
from baton.sessions.v1 import sessions_pb2, sessions_pb2_grpc
from baton_cli._process import ChildProcess
from baton_core import GrpcServer, Settings, free_port
from baton_core import constants as c
from baton_orchestrator import build_app

LEASE = "1.5"
WORKER_METHODS = ("casefile.create", "casefile.add_note", "casefile.list_notes", "demo.sleep",
                  "demo.fail", "demo.echo")


@dataclass
class Cluster:
    """Registry + sessions + example worker, shared by every workflow test."""

    data_dir: Path
    env: dict[str, str]
    addrs: dict[str, str]
    children: list[ChildProcess] = field(default_factory=list)

    def orchestrator_process(self, name: str, database_url: str,
                             extra_env: dict[str, str] | None = None) -> tuple[ChildProcess, str]:
        address = f"127.0.0.1:{free_port()}"
        env = {**self.env, c.ENV_LISTEN: address, c.ENV_DATABASE_URL: database_url,
               "BATON_RUN_LEASE_SECONDS": LEASE, **(extra_env or {})}
        child = ChildProcess.service(name, "orchestrator", env,
                                     self.data_dir / "logs" / f"{name}.log", address)
        return child, address


@pytest.fixture(scope="session")
async def cluster(redis_url, tmp_path_factory) -> AsyncIterator[Cluster]:
    data_dir = tmp_path_factory.mktemp("wf-cluster")
    addrs = {kind: f"127.0.0.1:{free_port()}" for kind in ("registry", "sessions", "worker")}
    env = {c.ENV_DATA_DIR: str(data_dir), c.ENV_REDIS_URL: redis_url,
           c.ENV_REGISTRY_ADDR: addrs["registry"], c.ENV_SESSIONS_ADDR: addrs["sessions"],
           c.ENV_LEASE_TTL: "5", c.ENV_LOG_LEVEL: "INFO", c.ENV_AUTH: "off"}
    cl = Cluster(data_dir, env, addrs)
    try:
        for kind in ("registry", "sessions"):
            child = ChildProcess.service(
                kind, kind, {**env, c.ENV_LISTEN: addrs[kind],
                             c.ENV_DATABASE_URL: f"sqlite+aiosqlite:///{data_dir / kind}.db"},
                data_dir / "logs" / f"{kind}.log", addrs[kind])
            await asyncio.to_thread(child.start)
            cl.children.append(child)
        worker = ChildProcess("worker", [sys.executable, "-m", "baton_examples.casefile_worker"],
                              {**env, "BATON_WORKER_LISTEN": addrs["worker"]},
                              data_dir / "logs" / "worker.log", addrs["worker"])
        await asyncio.to_thread(worker.start)
        cl.children.append(worker)
        yield cl
    finally:
        for child in reversed(cl.children):
            child.stop()


@dataclass
class Orchestrator:
    address: str
    app: object
    stub: workflows_pb2_grpc.WorkflowsStub
    sessions: sessions_pb2_grpc.SessionOrchestratorStub
    backend: str
    databases: object


async def wait_for_methods(cache, names=WORKER_METHODS, timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = [await cache.get(n) for n in names]
        if all(m is not None and m.live_endpoints() for m in found):
            return
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"worker methods not registered: {names}")
        await asyncio.sleep(0.1)


@pytest.fixture(scope="session")
async def orchestrator(cluster, databases, redis_url,
                       tmp_path_factory) -> AsyncIterator[Orchestrator]:
    settings = Settings(
        service="orchestrator", listen="127.0.0.1:0",
        data_dir=tmp_path_factory.mktemp(f"orch-{databases.backend}"),
        database_url=await databases.new_url_async("orch"), redis_url=redis_url,
        registry_addr=cluster.addrs["registry"], orchestrator_addr="",
        sessions_addr=cluster.addrs["sessions"], extra={"BATON_RUN_LEASE_SECONDS": LEASE})
    app = build_app(settings)
    await app.start()
    server = GrpcServer("127.0.0.1:0", app.services())
    port = await server.start()
    await wait_for_methods(app.cache)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    sessions_channel = grpc.aio.insecure_channel(cluster.addrs["sessions"])
    yield Orchestrator(f"127.0.0.1:{port}", app, workflows_pb2_grpc.WorkflowsStub(channel),
                       sessions_pb2_grpc.SessionOrchestratorStub(sessions_channel),
                       databases.backend, databases)
    await channel.close()
    await sessions_channel.close()
    await server.stop(0.5)
    await app.stop()


@pytest.fixture
def stub(orchestrator) -> workflows_pb2_grpc.WorkflowsStub:
    return orchestrator.stub


async def wait_run(stub, run_id: str, timeout: float = 30.0) -> pb.Run:
    """Follows WatchRun to the run's end and returns the ended run."""
    async def follow():
        async for _ in stub.WatchRun(pb.WatchRunRequest(run_id=run_id)):
            pass
    await asyncio.wait_for(follow(), timeout)
    return (await stub.GetRun(pb.GetRunRequest(run_id=run_id))).run


async def run_named(stub, name: str, timeout: float = 10.0) -> pb.Run:
    """The newest RUNNING run of the workflow `name`, once there is one (a run
    another process, such as the CLI, started)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        runs = (await stub.ListRuns(pb.ListRunsRequest(
            page_size=50, statuses=[pb.Run.STATUS_RUNNING]))).runs
        found = [r for r in runs if r.workflow_name == name]
        if found:
            return found[0]
        await asyncio.sleep(0.1)
    raise TimeoutError(f"no run of {name} started")


async def steps_of(stub, run_id: str) -> dict[str, pb.RunStep]:
    reply = await stub.ListRunSteps(pb.ListRunStepsRequest(run_id=run_id))
    return {s.step_id: s for s in reply.steps}


async def events_of(stub, run_id: str) -> list[pb.RunEvent]:
    return [r.event async for r in stub.WatchRun(pb.WatchRunRequest(run_id=run_id))]


async def new_session(orch: Orchestrator, context: dict | None = None) -> str:
    import uuid

    from baton_core import dict_to_struct
    reply = await orch.sessions.CreateSession(sessions_pb2.CreateSessionRequest(
        user_id=f"user-{uuid.uuid4().hex[:8]}"))
    session = reply.session
    if context:
        await orch.sessions.UpdateSessionContext(sessions_pb2.UpdateSessionContextRequest(
            session_id=session.session_id, values=dict_to_struct(context)))
    return session.session_id


async def start(stub, workflow: pb.Workflow | None = None, **fields) -> pb.Run:
    """StartRun of an inline definition (or of fields such as workflow_id)."""
    from baton_core import dict_to_struct
    if "input" in fields:
        fields["input"] = dict_to_struct(fields["input"])
    request = pb.StartRunRequest(definition=workflow, **fields) if workflow is not None \
        else pb.StartRunRequest(**fields)
    return (await stub.StartRun(request)).run


async def run_to_end(stub, workflow: pb.Workflow, **fields) -> tuple[pb.Run,
                                                                     dict[str, pb.RunStep]]:
    run = await start(stub, workflow, **fields)
    run = await wait_run(stub, run.run_id)
    return run, await steps_of(stub, run.run_id)


@contextlib.asynccontextmanager
async def orchestrator_process(cluster: Cluster, name: str, url: str, **env: str):
    """An orchestrator process of its own on `url` (kill it to crash it): the
    process and a Workflows stub to it."""
    child, address = cluster.orchestrator_process(name, url, env)
    await asyncio.to_thread(child.start)
    channel = grpc.aio.insecure_channel(address)
    try:
        yield child, workflows_pb2_grpc.WorkflowsStub(channel)
    finally:
        await channel.close()
        await asyncio.to_thread(child.stop)


async def wait_in_flight(stub, run_id: str, step_id: str) -> None:
    """Returns once the step's RUNNING event is committed."""
    async for reply in stub.WatchRun(pb.WatchRunRequest(run_id=run_id)):
        if reply.event.step_id == step_id and \
                reply.event.step_status == pb.RunStep.STATUS_RUNNING:
            return


def error_details(exc: grpc.aio.AioRpcError):
    """(ErrorInfo reason, [(field, description)]) of a failed call."""
    from baton_core import from_rpc_error
    err = from_rpc_error(exc)
    return err.reason, err.violations
