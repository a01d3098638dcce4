"""Fixtures for the SDK tests: workers on real ports, and a real registry in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from baton_core import GrpcServer, Settings
from baton_sdk import ProviderClient, RegistryClient, Worker


@pytest.fixture
async def start_worker():
    """Starts a Worker (without a registry unless given one); stops it after the test."""
    workers: list[Worker] = []

    async def start(methods, **options) -> Worker:
        options.setdefault("registry_addr", None)
        worker = Worker(methods, **options)
        await worker.start()
        workers.append(worker)
        return worker

    yield start
    for worker in reversed(workers):
        await worker.stop()


@pytest.fixture
async def provider_client():
    """Opens a ProviderClient on a worker's address; closes it after the test."""
    clients: list[ProviderClient] = []

    def connect(worker: Worker, **options) -> ProviderClient:
        assert worker.address is not None, "the worker is not started"
        client = ProviderClient(worker.address, **options)
        clients.append(client)
        return client

    yield connect
    for client in clients:
        await client.close()


async def start_registry(settings: Settings, listen: str = "127.0.0.1:0"):
    """Starts the registry service in this process; returns (app, server, address)."""
    from baton_registry import build_app

    app = build_app(settings)
    await app.start()
    server = GrpcServer(listen, app.services())
    try:
        port = await server.start()
    except BaseException:
        await app.stop()
        raise
    return app, server, f"127.0.0.1:{port}"


def registry_settings(database_url: str, redis_url: str, data_dir) -> Settings:
    return Settings(service="registry", listen="127.0.0.1:0", data_dir=data_dir,
                    database_url=database_url, redis_url=redis_url, registry_addr="",
                    orchestrator_addr="", sessions_addr="")


@pytest.fixture
async def own_registry(database_url, redis_url, tmp_path):
    """A registry of this test's own (its address), for tests that watch leases."""
    pytest.importorskip("baton_registry")
    app, server, address = await start_registry(
        registry_settings(database_url, redis_url, tmp_path / "registry"))
    yield address
    await server.stop(0)
    await app.stop()


@pytest.fixture
async def registry_client():
    """Opens RegistryClients on given addresses; closes them after the test."""
    clients: list[RegistryClient] = []

    def connect(address: str, **options) -> RegistryClient:
        client = RegistryClient(address, **options)
        clients.append(client)
        return client

    yield connect
    for client in clients:
        await client.close()


@pytest.fixture(scope="session")
async def registry_addr(databases, redis_url, tmp_path_factory) -> AsyncIterator[str]:
    """A real registry shared by the session; tests keep apart by method names."""
    registry = pytest.importorskip("baton_registry")
    if not hasattr(registry, "build_app"):
        pytest.skip("baton_registry.build_app does not exist yet")
    settings = registry_settings(await databases.new_url_async("registry"), redis_url,
                                 tmp_path_factory.mktemp("registry"))
    app, server, address = await start_registry(settings)
    yield address
    await server.stop(0)
    await app.stop()
