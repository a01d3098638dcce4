"""Fixtures: a real registry (app + gRPC server on port 0) per test, and watch streams."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import grpc
import pytest

from baton.registry.v1 import registry_pb2 as pb
from baton.registry.v1 import registry_pb2_grpc as pb_grpc
from baton_core import GrpcServer, Settings
from baton_registry import RegistryApp, build_app

EVENT = pb.WatchMethodsResponse


@dataclass
class Registry:
    """One running registry replica and a client channel to it."""

    app: RegistryApp
    server: GrpcServer
    channel: grpc.aio.Channel
    stub: pb_grpc.MethodRegistryStub

    async def close(self) -> None:
        # Closing the channel first ends open watches, so the server stops at once.
        await self.channel.close()
        await self.server.stop(0)
        await self.app.stop()


class Watch:
    """A WatchMethods stream read one event at a time, with a timeout."""

    def __init__(self, call) -> None:
        self.call = call

    async def next(self, timeout: float = 5.0) -> pb.WatchMethodsResponse:
        event = await asyncio.wait_for(self.call.read(), timeout)
        assert event is not grpc.aio.EOF, "watch ended"
        return event

    async def until_synced(self) -> list[pb.WatchMethodsResponse]:
        """The EXISTING events, after checking SYNCED follows them."""
        existing = []
        while (event := await self.next()).type != EVENT.EVENT_TYPE_SYNCED:
            assert event.type == EVENT.EVENT_TYPE_EXISTING
            existing.append(event)
        return existing

    async def until(self, predicate: Callable[[pb.WatchMethodsResponse], bool],
                    timeout: float = 5.0) -> pb.WatchMethodsResponse:
        """The first event matching `predicate`, skipping others."""
        async def scan():
            while not predicate(event := await self.next(timeout)):
                pass
            return event
        return await asyncio.wait_for(scan(), timeout)


def settings(database_url: str, tmp_path, lease_ttl: float = 10.0) -> Settings:
    return Settings(
        service="registry", listen="127.0.0.1:0", data_dir=tmp_path,
        database_url=database_url, redis_url="redis://127.0.0.1:1/0",
        registry_addr="", orchestrator_addr="", sessions_addr="", lease_ttl=lease_ttl)


@pytest.fixture
async def start_registry(database_url, tmp_path):
    """Factory: `await start_registry(lease_ttl=...)` starts a replica on the test's database."""
    started: list[Registry] = []

    async def start(lease_ttl: float = 10.0) -> Registry:
        app = build_app(settings(database_url, tmp_path, lease_ttl))
        await app.start()
        server = GrpcServer("127.0.0.1:0", app.services())
        port = await server.start()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        registry = Registry(app, server, channel, pb_grpc.MethodRegistryStub(channel))
        started.append(registry)
        return registry

    yield start
    for registry in reversed(started):
        await registry.close()


@pytest.fixture
async def stub(start_registry) -> pb_grpc.MethodRegistryStub:
    return (await start_registry()).stub


@pytest.fixture
async def open_watch():
    """Factory: `await open_watch(stub, domain)` opens a watch, cancelled at teardown."""
    calls = []

    async def open_(stub: pb_grpc.MethodRegistryStub, domain: str = "") -> Watch:
        call = stub.WatchMethods(pb.WatchMethodsRequest(domain=domain))
        calls.append(call)
        return Watch(call)

    yield open_
    for call in calls:
        call.cancel()
