"""The platform with auth on and two orchestrator replicas sharing SQL and Redis.

Per backend: registry, sessions, orchestrators A and B (A also reads a
policies file at start). Each test gets a Probe worker with methods under a
prefix of its own, so its policies touch nobody else's operations.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import grpc
import pytest

from baton.orchestrator.v1 import (
    audit_pb2_grpc,
    circuit_breakers_pb2_grpc,
    hooks_pb2,
    hooks_pb2_grpc,
    orchestrator_pb2,
    orchestrator_pb2_grpc,
    policies_pb2,
    policies_pb2_grpc,
)
from baton.registry.v1 import registry_pb2_grpc
from baton.sessions.v1 import sessions_pb2_grpc
from baton_cli._process import ChildProcess
from baton_core import constants as c
from baton_core import dict_to_struct, free_port

from .hook_server import Behaviour, serve_hook
from .probe import Probe

POLICIES_FILE = """
policies:
  - name: from-file
    pattern: "filetest.*"
    description: loaded from the policies file
    max_timeout: 7s
"""


@dataclass
class Orchestrator:
    address: str
    channel: grpc.aio.Channel
    dispatch: orchestrator_pb2_grpc.OrchestratorStub = field(init=False)
    policies: policies_pb2_grpc.PolicyEngineStub = field(init=False)
    hooks: hooks_pb2_grpc.HookManagerStub = field(init=False)
    breakers: circuit_breakers_pb2_grpc.CircuitBreakersStub = field(init=False)
    audit: audit_pb2_grpc.AuditLogStub = field(init=False)

    def __post_init__(self) -> None:
        self.dispatch = orchestrator_pb2_grpc.OrchestratorStub(self.channel)
        self.policies = policies_pb2_grpc.PolicyEngineStub(self.channel)
        self.hooks = hooks_pb2_grpc.HookManagerStub(self.channel)
        self.breakers = circuit_breakers_pb2_grpc.CircuitBreakersStub(self.channel)
        self.audit = audit_pb2_grpc.AuditLogStub(self.channel)


@dataclass
class ControlPlatform:
    backend: str
    addrs: dict[str, str]
    metrics_port: int
    a: Orchestrator
    b: Orchestrator
    registry: registry_pb2_grpc.MethodRegistryStub
    sessions: sessions_pb2_grpc.SessionOrchestratorStub
    workflows_channel: grpc.aio.Channel


# The built-in hooks, which a policy naming external ones lists too.
BUILTINS = ["metrics", "audit", "session_lifecycle"]


def dispatch_request(operation: str, **directives) -> orchestrator_pb2.DispatchRequest:
    """A Dispatch of `operation` with params {"value": "v"} and these directives."""
    return orchestrator_pb2.DispatchRequest(
        operation=operation, params=dict_to_struct({"value": "v"}),
        directives=orchestrator_pb2.Directives(**directives))


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 10.0,
                what: str = "condition") -> None:
    """Polls `check` until it holds; for state another process reaches on its own."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not hold within {timeout}s")
        await asyncio.sleep(0.05)


@pytest.fixture(scope="session")
async def control(databases, redis_url, auth_keys,
                  tmp_path_factory) -> AsyncIterator[ControlPlatform]:
    data_dir = tmp_path_factory.mktemp(f"control-{databases.backend}")
    policies_file = data_dir / "policies.yaml"
    policies_file.write_text(POLICIES_FILE)
    addrs = {kind: f"127.0.0.1:{free_port()}"
             for kind in ("registry", "sessions", "orchestrator", "orchestrator-b")}
    env = {**auth_keys.env(), c.ENV_DATA_DIR: str(data_dir), c.ENV_REDIS_URL: redis_url,
           c.ENV_REGISTRY_ADDR: addrs["registry"], c.ENV_SESSIONS_ADDR: addrs["sessions"],
           c.ENV_ORCHESTRATOR_ADDR: addrs["orchestrator"], c.ENV_LEASE_TTL: "5"}
    orchestrator_db = await databases.new_url_async("orch")
    metrics_port = free_port()
    children = []
    channels: dict[str, grpc.aio.Channel] = {}
    try:
        for name in ("registry", "sessions", "orchestrator", "orchestrator-b"):
            kind = name.split("-")[0]
            extra = {c.ENV_LISTEN: addrs[name], c.ENV_DATABASE_URL: orchestrator_db
                     if kind == "orchestrator" else await databases.new_url_async(kind)}
            if name == "orchestrator":
                extra["BATON_POLICIES_FILE"] = str(policies_file)
                extra["BATON_METRICS_PORT"] = str(metrics_port)
            child = ChildProcess.service(name, kind, {**env, **extra},
                                         data_dir / "logs" / f"{name}.log", addrs[name])
            await asyncio.to_thread(child.start)
            children.append(child)
        channels = {name: grpc.aio.insecure_channel(addr) for name, addr in addrs.items()}
        yield ControlPlatform(
            backend=databases.backend, addrs=addrs, metrics_port=metrics_port,
            a=Orchestrator(addrs["orchestrator"], channels["orchestrator"]),
            b=Orchestrator(addrs["orchestrator-b"], channels["orchestrator-b"]),
            registry=registry_pb2_grpc.MethodRegistryStub(channels["registry"]),
            sessions=sessions_pb2_grpc.SessionOrchestratorStub(channels["sessions"]),
            workflows_channel=channels["orchestrator"])
    finally:
        for channel in channels.values():
            await channel.close()
        for child in reversed(children):
            child.stop()


@pytest.fixture
def admin(auth_keys):
    return auth_keys.bearer("alice", ["admin"])


@pytest.fixture
async def probe(control, auth_keys, admin) -> AsyncIterator[Probe]:
    """A worker with `<prefix>.echo` and `<prefix>.sleep`, known to both replicas."""
    probe = Probe(f"p{uuid.uuid4().hex[:10]}")
    await probe.start(control.addrs["registry"], auth_keys.token("probe", ["worker"]))

    async def known() -> bool:
        for replica in (control.a, control.b):
            reply = await replica.policies.ExplainPolicy(
                policies_pb2.ExplainPolicyRequest(operation=probe.echo), metadata=admin)
            if not reply.method_registered:
                return False
        return True

    await until(known, what="both replicas know the probe's methods")
    yield probe
    await probe.stop()


@pytest.fixture
async def hook_servers(control, admin):
    """Factory: `await hook_servers(name, stage, behaviour, **hook)` serves a hook
    and registers it; all are deleted and stopped at teardown."""
    journal: list = []
    started = []

    async def start(name: str, stage: str, behaviour: Behaviour | None = None, **fields):
        server, hook = await serve_hook(name, journal, behaviour or Behaviour())
        stage_value = hooks_pb2.Hook.STAGE_PRE if stage == "pre" else hooks_pb2.Hook.STAGE_POST
        await control.a.hooks.RegisterHook(hooks_pb2.RegisterHookRequest(hook=hooks_pb2.Hook(
            name=name, stage=stage_value, address=f"127.0.0.1:{server.port}", **fields)),
            metadata=admin)
        started.append((name, server))
        return hook

    start.journal = journal
    yield start
    for name, server in started:
        try:
            await control.a.hooks.DeleteHook(hooks_pb2.DeleteHookRequest(name=name),
                                             metadata=admin)
        except grpc.aio.AioRpcError:
            pass
        await server.stop(0)


async def put_policy(control: ControlPlatform, metadata, **fields) -> policies_pb2.Policy:
    """Creates a policy on replica A and waits until replica B applies it too."""
    created = (await control.a.policies.CreatePolicy(policies_pb2.CreatePolicyRequest(
        policy=policies_pb2.Policy(**fields)), metadata=metadata)).policy

    async def on_b() -> bool:
        reply = await control.b.policies.ListPolicies(policies_pb2.ListPoliciesRequest(),
                                                      metadata=metadata)
        return any(p.name == created.name and p.etag == created.etag for p in reply.policies)

    await until(on_b, what=f"replica B applies policy {created.name}")
    return created
