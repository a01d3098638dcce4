"""SessionOrchestrator latency and throughput next to bare gRPC and bare Redis.

Starts its own redis-server and one `baton serve sessions` process on SQLite,
then measures, from this process:

- latency p50/p99 of calls made one at a time, and
- throughput, with p50/p99 under that load, of 64 concurrent clients

for a bare gRPC round trip (grpc.health Check on the same server), bare Redis
(HSET+EXPIRE+HGETALL, one at a time and pipelined), GetSession,
TrackExecution and FindOrCreateSession (finding, and creating).

Run: .venv/bin/python bench/bench_sessions.py [--seconds 3] [--calls 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
import redis.asyncio as aioredis
from grpc_health.v1 import health_pb2, health_pb2_grpc

from baton.sessions.v1 import sessions_pb2 as pb
from baton.sessions.v1 import sessions_pb2_grpc as pb_grpc
from baton_cli._process import ChildProcess
from baton_core import RedisServer, free_port, new_id
from baton_core import constants as c

CONCURRENCY = 64
Call = Callable[[], Awaitable[object]]


@dataclass
class Row:
    name: str
    p50: float
    p99: float
    loaded_p50: float
    loaded_p99: float
    per_second: float

    def __str__(self) -> str:
        return (f"| {self.name:<30} | {self.p50:7.3f} | {self.p99:7.3f} | {self.loaded_p50:7.2f} "
                f"| {self.loaded_p99:7.2f} | {self.per_second:9,.0f} |")


HEADER = ("| operation                      | p50 ms  | p99 ms  | p50@64  | p99@64  |  calls/s  |\n"
          "|--------------------------------|---------|---------|---------|---------|-----------|")


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e3


async def measure(name: str, call: Call, calls: int, seconds: float) -> Row:
    for _ in range(min(200, calls)):
        await call()
    alone = []
    for _ in range(calls):
        started = time.perf_counter()
        await call()
        alone.append(time.perf_counter() - started)
    loaded: list[float] = []
    stop_at = time.perf_counter() + seconds

    async def client() -> None:
        while (started := time.perf_counter()) < stop_at:
            await call()
            loaded.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(CONCURRENCY)))
    elapsed = time.perf_counter() - started
    return Row(name, statistics.median(alone) * 1e3, _percentile(alone, 0.99),
               statistics.median(loaded) * 1e3, _percentile(loaded, 0.99), len(loaded) / elapsed)


async def bench(address: str, redis_url: str, calls: int, seconds: float) -> list[Row]:
    rows = []
    redis = aioredis.from_url(redis_url)
    async with grpc.aio.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        stub = pb_grpc.SessionOrchestratorStub(channel)
        check = health_pb2.HealthCheckRequest()
        rows.append(await measure("bare gRPC (health Check)", lambda: health.Check(check),
                                  calls, seconds))

        async def redis_round_trips() -> None:
            await redis.hset("bench:{h}", mapping={"a": "1", "b": "2"})
            await redis.expire("bench:{h}", 60)
            await redis.hgetall("bench:{h}")

        async def redis_pipelined() -> None:
            async with redis.pipeline(transaction=False) as pipe:
                pipe.hset("bench:{h}", mapping={"a": "1", "b": "2"})
                pipe.expire("bench:{h}", 60)
                pipe.hgetall("bench:{h}")
                await pipe.execute()

        rows.append(await measure("bare Redis HSET+EXPIRE+HGETALL", redis_round_trips,
                                  calls, seconds))
        rows.append(await measure("bare Redis, pipelined", redis_pipelined, calls, seconds))

        user = f"bench-{new_id()}"
        pairs = [(user, f"casefile-{i}") for i in range(CONCURRENCY)]
        ids = [(await stub.FindOrCreateSession(pb.FindOrCreateSessionRequest(
            user_id=u, casefile_id=cf))).session.session_id for u, cf in pairs]
        gets = itertools.cycle([pb.GetSessionRequest(session_id=sid) for sid in ids])
        finds = itertools.cycle([pb.FindOrCreateSessionRequest(user_id=u, casefile_id=cf)
                                 for u, cf in pairs])
        tracks = itertools.cycle([pb.TrackExecutionRequest(
            session_id=sid, execution=pb.Execution(operation="casefile.create",
                                                   status=pb.Execution.STATUS_SUCCEEDED,
                                                   actor="bench")) for sid in ids])
        fresh = (pb.FindOrCreateSessionRequest(user_id=f"bench-{new_id()}", casefile_id="cf")
                 for _ in itertools.count())
        rows.append(await measure("GetSession", lambda: stub.GetSession(next(gets)),
                                  calls, seconds))
        rows.append(await measure("TrackExecution", lambda: stub.TrackExecution(next(tracks)),
                                  calls, seconds))
        rows.append(await measure("FindOrCreateSession (finds)",
                                  lambda: stub.FindOrCreateSession(next(finds)), calls, seconds))
        rows.append(await measure("FindOrCreateSession (creates)",
                                  lambda: stub.FindOrCreateSession(next(fresh)), calls, seconds))
    await redis.aclose()
    return rows


def _verdict(rows: list[Row]) -> str:
    by_name = {row.name: row for row in rows}
    bare = by_name["bare gRPC (health Check)"].p50 + by_name["bare Redis HSET+EXPIRE+HGETALL"].p50
    get, track = by_name["GetSession"], by_name["TrackExecution"]
    return "\n".join([
        f"GetSession p50 {get.p50:.3f} ms vs 1.25 x (bare gRPC + bare Redis) = "
        f"{1.25 * bare:.3f} ms: {'met' if get.p50 <= 1.25 * bare else 'NOT met'}",
        f"GetSession {get.per_second:,.0f} calls/s vs 3,000: "
        f"{'met' if get.per_second >= 3000 else 'NOT met'}",
        f"TrackExecution p50 {track.p50:.3f} ms vs 3 ms: "
        f"{'met' if track.p50 <= 3.0 else 'NOT met'}",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="load phase per operation")
    parser.add_argument("--calls", type=int, default=2000, help="one-at-a-time calls")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-sessions-") as tmp:
        directory = Path(tmp)
        redis = RedisServer(directory / "redis", persist=False)
        redis.start()
        address = f"127.0.0.1:{free_port()}"
        env = {c.ENV_LISTEN: address, c.ENV_REDIS_URL: redis.url, c.ENV_LOG_LEVEL: "WARNING",
               c.ENV_AUTH: "off",
               c.ENV_DATABASE_URL: f"sqlite+aiosqlite:///{directory / 'sessions.db'}"}
        server = ChildProcess.service("sessions", "sessions", env, directory / "sessions.log",
                                      address)
        try:
            server.start()
            try:
                import uvloop
                rows = uvloop.run(bench(address, redis.url, args.calls, args.seconds))
            except ImportError:
                rows = asyncio.run(bench(address, redis.url, args.calls, args.seconds))
        finally:
            server.stop()
            redis.stop()
        print(f"sessions service on SQLite; latency of calls one at a time, then "
              f"{CONCURRENCY} concurrent clients on one channel")
        print(HEADER)
        for row in rows:
            print(row)
        print(_verdict(rows))
        if server.tail():
            print("\nservice log (tail):\n" + server.tail(10))


if __name__ == "__main__":
    main()
