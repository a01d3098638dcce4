"""Shared fixtures: a private real Redis, SQLite and (when configured) PostgreSQL.

Set BATON_TEST_POSTGRES_URL (e.g. postgresql://postgres@127.0.0.1:5432/test)
to run every database-backed test against PostgreSQL too; each test session
creates its own databases there and drops them at the end.
"""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import redis.asyncio as aioredis

from baton_core import RedisServer

if TYPE_CHECKING:
    from gateway._platform import RunningPlatform

# Services started by tests run with auth off unless a test turns it on (the
# auth and control tests do, with their own secrets); set before anything
# reads the environment.
os.environ.setdefault("BATON_AUTH", "off")
# The suite keeps several platforms (each three services) alive on one
# PostgreSQL at once: small pools keep it under max_connections (100).
os.environ.setdefault("BATON_DB_POOL_SIZE", "1")
os.environ.setdefault("BATON_DB_MAX_OVERFLOW", "7")
# A suite started in the background by a shell without job control (`make test &`
# in a script) inherits SIGINT ignored, and so would every process it starts:
# the tests of Ctrl-C would then see it ignored. A handler (unlike "ignored") is
# not inherited across exec, so the children get SIGINT's default back.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

PG_URL = os.environ.get("BATON_TEST_POSTGRES_URL", "").strip()
BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory) -> Iterator[RedisServer]:
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
        self._dropping: set[asyncio.Task] = set()

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

    def release(self, url: str) -> None:
        """Drops a database its test is done with, in the background while the next
        tests run (a drop takes PostgreSQL ~0.1 s; ~150 left to the end took ~11 s)."""
        db = url.rsplit("/", 1)[-1]
        if self.backend != "postgres" or db not in self._pg_databases:
            return
        self._pg_databases.remove(db)
        task = asyncio.get_running_loop().create_task(_drop(db))
        self._dropping.add(task)
        task.add_done_callback(self._dropping.discard)

    async def cleanup(self) -> None:
        await asyncio.gather(*self._dropping, *(_drop(db) for db in self._pg_databases))


async def _drop(db: str) -> None:
    async with _DROPS:
        try:
            await _pg_exec(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        except Exception:  # noqa: BLE001 - best effort at teardown
            pass


# Drops at once: a drop takes ~0.1 s alone, ~0.02 s each four at a time.
_DROPS = asyncio.Semaphore(4)


@pytest.fixture(scope="session", params=BACKENDS)
async def databases(request, tmp_path_factory):
    """A DatabaseFactory for each backend; PostgreSQL only when configured."""
    if request.param == "postgres" and not PG_URL:
        pytest.skip("BATON_TEST_POSTGRES_URL is not set")
    factory = DatabaseFactory(request.param, tmp_path_factory.mktemp(f"db-{request.param}"))
    yield factory
    await factory.cleanup()


@pytest.fixture
async def database_url(databases) -> AsyncIterator[str]:
    """A fresh empty database for one test, on the current backend."""
    url = await databases.new_url_async("t")
    yield url
    databases.release(url)


async def _cancel_at_random(path: Path, writing, trials: int, window: float) -> None:
    """Starts `writing` (a coroutine function writing to the SQLite file at `path`
    in a loop) `trials` times, cancels it after a random moment of up to `window`
    seconds, and asserts that once it has ended nothing holds SQLite's write lock."""
    import random
    import sqlite3

    other = sqlite3.connect(path, timeout=0, isolation_level=None)  # waits for nothing
    rng = random.Random(7)
    try:
        for _ in range(trials):
            task = asyncio.create_task(writing())
            await asyncio.sleep(rng.random() * window)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            other.execute("BEGIN IMMEDIATE")  # "database is locked" if it were held
            other.execute("ROLLBACK")
    finally:
        other.close()


@pytest.fixture
def cancel_at_random():
    """See _cancel_at_random: cancelled writes must leave no lock behind."""
    return _cancel_at_random


class AuthKeys:
    """Keys of a platform that runs with auth on: an HS256 secret, an RS256 key pair
    and an API keys file; `token()` mints what a caller would present."""

    issuer = "baton-test"
    audience = "baton-test"

    def __init__(self, directory: Path) -> None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        from baton_core import hash_api_key

        self.secret = uuid.uuid4().hex + uuid.uuid4().hex
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.private_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()).decode()
        self.public_path = directory / "jwt-public.pem"
        self.public_path.write_bytes(key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        self.api_key = "bk_" + uuid.uuid4().hex
        self.api_keys_path = directory / "api-keys.yaml"
        self.api_keys_path.write_text(
            "keys:\n"
            f"  - subject: ci-bot\n    sha256: {hash_api_key(self.api_key)}\n"
            "    roles: [operator]\n")

    def env(self) -> dict[str, str]:
        """What a service process needs to run with auth on."""
        return {"BATON_AUTH": "on", "BATON_JWT_SECRET": self.secret,
                "BATON_JWT_PUBLIC_KEY_FILE": str(self.public_path),
                "BATON_JWT_ISSUER": self.issuer, "BATON_JWT_AUDIENCE": self.audience,
                "BATON_API_KEYS_FILE": str(self.api_keys_path)}

    def token(self, subject: str = "alice", roles=("admin",), *, ttl: float = 600,
              alg: str = "HS256", **claims) -> str:
        import time

        import jwt

        now = int(time.time())
        payload = {"sub": subject, "roles": list(roles), "iss": self.issuer,
                   "aud": self.audience, "iat": now, "exp": now + int(ttl), **claims}
        key = self.secret if alg == "HS256" else self.private_pem
        return jwt.encode(payload, key, algorithm=alg)

    def bearer(self, *args, **kwargs) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token(*args, **kwargs)}"),)


@pytest.fixture(scope="session")
async def running(databases, redis_url, tmp_path_factory,
                  auth_keys) -> AsyncIterator[RunningPlatform]:
    """The whole platform, auth on, behind a real Envoy: one per backend, shared by
    the HTTP gateway and grpcurl tests."""
    from gateway._platform import platform_running

    data_dir = tmp_path_factory.mktemp(f"gateway-{databases.backend}")
    async with platform_running(databases, redis_url, data_dir, auth_keys) as platform:
        yield platform


@pytest.fixture(scope="session")
def auth_keys(tmp_path_factory) -> AuthKeys:
    return AuthKeys(tmp_path_factory.mktemp("auth"))
