"""The three services as processes with auth on (SQLite; auth does not depend on SQL)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from baton_cli._process import ChildProcess
from baton_core import constants as c
from baton_core import free_port


@dataclass
class Secured:
    addrs: dict[str, str]
    logs: Path
    children: dict[str, ChildProcess] = field(default_factory=dict)

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")


@pytest.fixture(scope="session")
async def secured(auth_keys, redis_url, tmp_path_factory) -> AsyncIterator[Secured]:
    data_dir = tmp_path_factory.mktemp("secured")
    addrs = {kind: f"127.0.0.1:{free_port()}"
             for kind in ("registry", "sessions", "orchestrator", "worker")}
    env = {**auth_keys.env(), c.ENV_DATA_DIR: str(data_dir), c.ENV_REDIS_URL: redis_url,
           c.ENV_REGISTRY_ADDR: addrs["registry"], c.ENV_SESSIONS_ADDR: addrs["sessions"],
           c.ENV_ORCHESTRATOR_ADDR: addrs["orchestrator"]}
    plat = Secured(addrs, data_dir / "logs")
    try:
        for kind in ("registry", "sessions", "orchestrator"):
            child = ChildProcess.service(
                kind, kind, {**env, c.ENV_LISTEN: addrs[kind],
                             c.ENV_DATABASE_URL: f"sqlite+aiosqlite:///{data_dir / kind}.db"},
                plat.logs / f"{kind}.log", addrs[kind])
            await asyncio.to_thread(child.start)
            plat.children[kind] = child
        worker = ChildProcess(
            "worker", [sys.executable, "-m", "baton_examples.casefile_worker"],
            {**env, c.ENV_WORKER_LISTEN: addrs["worker"],
             c.ENV_TOKEN: auth_keys.token("worker:example", ["worker"])},
            plat.logs / "worker.log", addrs["worker"])
        await asyncio.to_thread(worker.start)
        plat.children["worker"] = worker
        yield plat
    finally:
        for child in reversed(list(plat.children.values())):
            child.stop()


@pytest.fixture(scope="session")
async def secured_channels(secured):
    opened = {kind: grpc.aio.insecure_channel(addr) for kind, addr in secured.addrs.items()}
    yield opened
    for channel in opened.values():
        await channel.close()
