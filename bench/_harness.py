"""Shared benchmark plumbing: start the platform as processes, time calls."""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from baton_cli._process import ChildProcess
from baton_core import RedisServer, free_port
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
    """Redis + registry + sessions + orchestrator + example worker on SQLite."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.redis = RedisServer(directory / "redis", persist=False)
        self.addrs = {k: f"127.0.0.1:{free_port()}"
                      for k in ("registry", "sessions", "orchestrator", "worker")}
        self.children: list[ChildProcess] = []

    def start(self) -> None:
        self.redis.start()
        env = {c.ENV_DATA_DIR: str(self.directory), c.ENV_REDIS_URL: self.redis.url,
               c.ENV_REGISTRY_ADDR: self.addrs["registry"],
               c.ENV_SESSIONS_ADDR: self.addrs["sessions"],
               c.ENV_ORCHESTRATOR_ADDR: self.addrs["orchestrator"], c.ENV_LOG_LEVEL: "WARNING"}
        for kind in ("registry", "sessions", "orchestrator"):
            child = ChildProcess.service(kind, kind, {**env, c.ENV_LISTEN: self.addrs[kind]},
                                         self.directory / f"{kind}.log", self.addrs[kind])
            child.start()
            self.children.append(child)
        worker = ChildProcess("worker", [sys.executable, "-m", "baton_examples.casefile_worker"],
                              {**env, "BATON_WORKER_LISTEN": self.addrs["worker"]},
                              self.directory / "worker.log", self.addrs["worker"])
        worker.start()
        self.children.append(worker)

    def stop(self) -> None:
        for child in reversed(self.children):
            child.stop()
        self.redis.stop()
