"""Shared fixtures: a private real Redis, SQLite and (when configured) PostgreSQL.

Set BATON_TEST_POSTGRES_URL (e.g. postgresql://postgres@127.0.0.1:5432/test)
to run every database-backed test against PostgreSQL too; each test session
creates its own databases there and drops them at the end.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from baton_core import RedisServer

PG_URL = os.environ.get("BATON_TEST_POSTGRES_URL", "").strip()
BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory) -> RedisServer:
    """A private redis-server on a free port for the whole test session."""
    server = RedisServer(tmp_path_factory.mktemp("redis"), persist=False)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server) -> str:
    return redis_server.url


@pytest.fixture
async def redis_client(redis_url):
    client = aioredis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


def _pg_admin_dsn() -> str:
    return PG_URL.replace("postgresql+asyncpg://", "postgresql://")


async def _pg_exec(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_pg_admin_dsn())
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


class DatabaseFactory:
    """Hands out fresh, empty databases of one backend, cleaned up at the end."""

    def __init__(self, backend: str, directory: Path) -> None:
        self.backend = backend
        self.directory = directory
        self._pg_databases: list[str] = []

    def _sqlite_url(self, name: str) -> str:
        path = self.directory / f"{name}-{uuid.uuid4().hex[:8]}.db"
        return f"sqlite+aiosqlite:///{path}"

    async def new_url_async(self, name: str = "db") -> str:
        """A fresh empty database URL (async driver) named after `name`."""
        if self.backend == "sqlite":
            return self._sqlite_url(name)
        db = f"baton_t_{name}_{uuid.uuid4().hex[:10]}".lower().replace("-", "_")
        await _pg_exec(f'CREATE DATABASE "{db}"')
        self._pg_databases.append(db)
        return self._pg_url(db)

    def _pg_url(self, db: str) -> str:
        base = _pg_admin_dsn().rsplit("/", 1)[0]
        return base.replace("postgresql://", "postgresql+asyncpg://") + f"/{db}"

    async def cleanup(self) -> None:
        for db in self._pg_databases:
            try:
                await _pg_exec(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
            except Exception:  # noqa: BLE001 - best effort at teardown
                pass


@pytest.fixture(scope="session", params=BACKENDS)
async def databases(request, tmp_path_factory):
    """A DatabaseFactory for each backend; PostgreSQL only when configured."""
    if request.param == "postgres" and not PG_URL:
        pytest.skip("BATON_TEST_POSTGRES_URL is not set")
    factory = DatabaseFactory(request.param, tmp_path_factory.mktemp(f"db-{request.param}"))
    yield factory
    await factory.cleanup()


@pytest.fixture
async def database_url(databases) -> str:
    """A fresh empty database for one test, on the current backend."""
    return await databases.new_url_async("t")
