"""Shared benchmark plumbing: start the platform as processes, time calls."""

from __future__ import annotations

import asyncio
import secrets
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from baton_cli._process import ChildProcess
from baton_core import AuthConfig, RedisServer, free_port, issue_token
from baton_core import constants as c


@dataclass
class Figures:
    name: str
    p50_ms: float
    p99_ms: float
    per_second: float

    def row(self) -> str:
        return f"| {self.name} | {self.p50_ms:.3f} | {self.p99_ms:.3f} | {self.per_second:,.0f} |"


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(name: str, call: Callable[[], Awaitable[object]], *, sequential: int = 2000,
                  concurrency: int = 64, seconds: float = 3.0, warmup: int = 200) -> Figures:
    """p50/p99 from sequential calls; throughput from `concurrency` callers."""
    for _ in range(warmup):
        await call()
    latencies = []
    for _ in range(sequential):
        started = time.perf_counter()
        await call()
        latencies.append(time.perf_counter() - started)
    done = 0
    stop_at = time.perf_counter() + seconds

    async def caller():
        nonlocal done
        while time.perf_counter() < stop_at:
            await call()
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return Figures(name, statistics.median(latencies) * 1e3, percentile(latencies, 0.99) * 1e3,
                   done / elapsed)


class BenchPlatform:
    """Redis + registry + sessions + orchestrator + example worker on SQLite.

    With `auth`, the services verify tokens (HS256) as in production and
    `token()` mints one; without it they run with auth off.
    """

    def __init__(self, directory: Path, auth: bool = False,
                 orchestrator_db: str = "") -> None:
        self.directory = directory
        self.orchestrator_db = orchestrator_db
        self.auth = AuthConfig(enabled=auth, secret=secrets.token_hex(32))
        self.redis = RedisServer(directory / "redis", persist=False)
        self.addrs = {k: f"127.0.0.1:{free_port()}"
                      for k in ("registry", "sessions", "orchestrator", "worker")}
        self.children: dict[str, ChildProcess] = {}

    def start(self) -> None:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        self.redis.start()
        env = {c.ENV_DATA_DIR: str(self.directory), c.ENV_REDIS_URL: self.redis.url,
               c.ENV_REGISTRY_ADDR: self.addrs["registry"],
               c.ENV_SESSIONS_ADDR: self.addrs["sessions"],
               c.ENV_ORCHESTRATOR_ADDR: self.addrs["orchestrator"], c.ENV_LOG_LEVEL: "WARNING",
               c.ENV_AUTH: "on" if self.auth.enabled else "off",
               c.ENV_JWT_SECRET: self.auth.secret}
        for kind in ("registry", "sessions", "orchestrator"):
            extra = {c.ENV_LISTEN: self.addrs[kind]}
            if kind == "orchestrator" and self.orchestrator_db:
                extra[c.ENV_DATABASE_URL] = self.orchestrator_db
            child = ChildProcess.service(kind, kind, {**env, **extra},
                                         self.directory / f"{kind}.log", self.addrs[kind])
            self.children[kind] = child
            child.start()
        worker = ChildProcess("worker", [sys.executable, "-m", "baton_examples.casefile_worker"],
                              {**env, c.ENV_WORKER_LISTEN: self.addrs["worker"],
                               c.ENV_TOKEN: self.token("worker")},
                              self.directory / "worker.log", self.addrs["worker"])
        self.children["worker"] = worker
        worker.start()

    def token(self, role: str = "admin") -> str:
        return issue_token(self.auth, f"bench-{role}", [role])

    def stop(self) -> None:
        for child in reversed(list(self.children.values())):
            child.stop()
        self.redis.stop()
