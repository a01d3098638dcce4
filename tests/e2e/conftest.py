"""The platform as real processes: registry, sessions, orchestrator, example worker."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from baton.orchestrator.v1 import orchestrator_pb2_grpc
from baton.registry.v1 import registry_pb2_grpc
from baton.sessions.v1 import sessions_pb2_grpc
from baton_cli._process import ChildProcess
from baton_core import constants as c
from baton_core import free_port


@dataclass
class Platform:
    data_dir: Path
    env: dict[str, str]
    addrs: dict[str, str]
    children: dict[str, ChildProcess] = field(default_factory=dict)

    def start_worker(self, name: str, args: list[str], extra_env: dict[str, str],
                     listen: str) -> ChildProcess:
        child = ChildProcess(name, [sys.executable, *args], {**self.env, **extra_env},
                             self.data_dir / "logs" / f"{name}.log", listen)
        child.start()
        self.children[name] = child
        return child


@pytest.fixture(scope="session")
async def platform(databases, redis_url, tmp_path_factory) -> AsyncIterator[Platform]:
    data_dir = tmp_path_factory.mktemp(f"platform-{databases.backend}")
    addrs = {kind: f"127.0.0.1:{free_port()}"
             for kind in ("registry", "sessions", "orchestrator", "worker")}
    env = {
        c.ENV_DATA_DIR: str(data_dir),
        c.ENV_REDIS_URL: redis_url,
        c.ENV_REGISTRY_ADDR: addrs["registry"],
        c.ENV_SESSIONS_ADDR: addrs["sessions"],
        c.ENV_ORCHESTRATOR_ADDR: addrs["orchestrator"],
        c.ENV_LEASE_TTL: "2",
        # As `baton up` names its orchestrator: a restart is the same replica.
        c.ENV_REPLICA_ID: "e2e",
    }
    plat = Platform(data_dir, env, addrs)
    try:
        for kind in ("registry", "sessions", "orchestrator"):
            child_env = {**env, c.ENV_LISTEN: addrs[kind],
                         c.ENV_DATABASE_URL: await databases.new_url_async(kind)}
            child = ChildProcess.service(kind, kind, child_env, data_dir / "logs" / f"{kind}.log",
                                         addrs[kind])
            await asyncio.to_thread(child.start)
            plat.children[kind] = child
        await asyncio.to_thread(
            plat.start_worker, "example-worker", ["-m", "baton_examples.casefile_worker"],
            {c.ENV_WORKER_LISTEN: addrs["worker"]}, addrs["worker"])
        yield plat
    finally:
        for child in reversed(list(plat.children.values())):
            child.stop()


@pytest.fixture(scope="session")
async def channels(platform):
    opened = {kind: grpc.aio.insecure_channel(addr) for kind, addr in platform.addrs.items()}
    yield opened
    for channel in opened.values():
        await channel.close()


@pytest.fixture
def orchestrator(channels):
    return orchestrator_pb2_grpc.OrchestratorStub(channels["orchestrator"])


@pytest.fixture
def registry(channels):
    return registry_pb2_grpc.MethodRegistryStub(channels["registry"])


@pytest.fixture
def sessions(channels):
    return sessions_pb2_grpc.SessionOrchestratorStub(channels["sessions"])
