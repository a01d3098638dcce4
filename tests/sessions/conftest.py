"""Fixtures: sessions replicas (app + gRPC server on port 0) on the test's database."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
import redis.asyncio as aioredis
import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from baton.sessions.v1 import sessions_pb2 as pb
from baton.sessions.v1 import sessions_pb2_grpc as pb_grpc
from baton_core import GrpcServer, RedisServer, Settings, make_engine, new_id
from baton_sessions import SessionsApp, SessionsConfig, build_app

FALLBACKS = "baton_sessions_redis_fallbacks_total"


@dataclass
class Replica:
    """One running sessions replica, its metrics and a client channel to it."""

    app: SessionsApp
    server: GrpcServer
    channel: grpc.aio.Channel
    stub: pb_grpc.SessionOrchestratorStub
    metrics: CollectorRegistry
    calls: list = field(default_factory=list)

    def fallbacks(self, operation: str | None = None) -> float:
        if operation is not None:
            return self.metrics.get_sample_value(FALLBACKS, {"operation": operation}) or 0.0
        return sum(sample.value for metric in self.metrics.collect()
                   for sample in metric.samples if sample.name == FALLBACKS)

    def watch(self, session_id: str, after: int = 0) -> Watch:
        call = self.stub.WatchSession(pb.WatchSessionRequest(session_id=session_id,
                                                             after_sequence=after))
        self.calls.append(call)
        return Watch(call)

    async def close(self) -> None:
        for call in self.calls:
            call.cancel()
        await self.channel.close()
        await self.server.stop(0)
        await self.app.stop()


class Watch:
    """A WatchSession stream read one event at a time, with a timeout."""

    def __init__(self, call) -> None:
        self.call = call

    async def next(self, timeout: float = 5.0) -> pb.SessionEvent:
        reply = await asyncio.wait_for(self.call.read(), timeout)
        assert reply is not grpc.aio.EOF, "watch ended"
        return reply.event


def settings(database_url: str, redis_url: str, tmp_path: Path, ttl: float = 3600.0) -> Settings:
    return Settings(
        service="sessions", listen="127.0.0.1:0", data_dir=tmp_path, database_url=database_url,
        redis_url=redis_url, registry_addr="", orchestrator_addr="", sessions_addr="",
        session_ttl=ttl)


@pytest.fixture
async def start_sessions(database_url, redis_url, tmp_path):
    """Factory: `await start_sessions(redis_url=..., **config)` starts a replica.

    Replicas share the test's database and Redis unless told otherwise
    (`database`, `redis`); keyword arguments are SessionsConfig fields.
    """
    started: list[Replica] = []

    async def start(redis: str | None = None, database: str | None = None,
                    **config) -> Replica:
        config.setdefault("ttl", 3600.0)
        config.setdefault("sweep_interval", 3600.0)
        metrics = CollectorRegistry()
        app = build_app(settings(database or database_url, redis or redis_url, tmp_path,
                                 config["ttl"]),
                        config=SessionsConfig(**config), registry=metrics)
        await app.start()
        server = GrpcServer("127.0.0.1:0", app.services())
        port = await server.start()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        replica = Replica(app, server, channel, pb_grpc.SessionOrchestratorStub(channel), metrics)
        started.append(replica)
        return replica

    yield start
    for replica in reversed(started):
        await replica.close()


@pytest.fixture
async def sessions(start_sessions) -> Replica:
    return await start_sessions()


@pytest.fixture
async def sql(database_url):
    """A separate engine on the test's database, to check what SQL really holds."""
    engine = make_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def private_redis(tmp_path):
    """Factory: a redis-server of this test's own, which the test may stop and restart."""
    servers: list[RedisServer] = []

    def start(port: int = 0, persist: bool = False) -> RedisServer:
        server = RedisServer(tmp_path / "redis", port=port, persist=persist)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
async def redis_of():
    """Factory: a Redis client for a URL, closed at teardown."""
    clients = []

    def connect(url: str) -> aioredis.Redis:
        client = aioredis.from_url(url, decode_responses=True)
        clients.append(client)
        return client

    yield connect
    for client in clients:
        await client.aclose()


def user() -> str:
    """A user id no other test uses (the session-wide Redis is shared)."""
    return f"user-{new_id()}"


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0,
                     interval: float = 0.05) -> None:
    """Polls `check` until it is true; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(interval)


async def sql_rows(engine, query: str, **params) -> list:
    async with engine.connect() as conn:
        return (await conn.execute(sa.text(query), params)).all()
