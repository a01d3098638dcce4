"""SQL engines and Alembic migrations shared by the services."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import weakref
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import QueuePool
from sqlalchemy.util import greenlet_spawn
from sqlalchemy.util import queue as sqla_queue

from ._constants import (
    ENV_DB_MAX_OVERFLOW,
    ENV_DB_POOL_SIZE,
    ENV_SQLITE_CACHE_KIB,
    ENV_SQLITE_POOL_SIZE,
)
from ._env import int_setting

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger("baton.db")


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


# How long a SQLite connection waits for another's write lock before SQLITE_BUSY.
SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_PRAGMAS = ("journal_mode=WAL", "synchronous=NORMAL",
                  f"busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
                  "foreign_keys=ON")
# A SQLite engine's pool: this many connections (each one thread under aiosqlite)
# and none beyond; every connection's page cache holds this many KiB. SQLite's
# own default cache (2 MiB per connection) and overflow connections opened and
# closed under load (a thread each, leaving a glibc arena behind) kept 6-8 MB in
# the orchestrator after 200 concurrent GetRuns; the files stay in the OS's cache.
DEFAULT_SQLITE_POOL_SIZE = 5
DEFAULT_SQLITE_CACHE_KIB = 256


def apply_sqlite_pragmas(dbapi_conn) -> None:
    """WAL, a busy timeout, foreign keys and the page cache's size on a sqlite3
    connection: every SQLite connection Baton opens, through SQLAlchemy or not,
    gets these."""
    for pragma in SQLITE_PRAGMAS:
        dbapi_conn.execute(f"PRAGMA {pragma}")
    cache_kib = int_setting(os.environ, ENV_SQLITE_CACHE_KIB, DEFAULT_SQLITE_CACHE_KIB, 16)
    dbapi_conn.execute(f"PRAGMA cache_size=-{cache_kib}")


# Engines whose pooled connections `release_idle_connections` may close: those
# made by make_engine with a connection pool (not SQLite in memory, whose one
# connection is the database).
_POOLED: weakref.WeakSet[AsyncEngine] = weakref.WeakSet()


def make_engine(url: str) -> AsyncEngine:
    """Creates an async engine; SQLite gets WAL, a busy timeout, its directory, a
    fixed pool and a bounded page cache per connection."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        # Idle connections kept per engine, and extra ones opened under load;
        # every replica of every service holds up to the first, so keep it small
        # where many processes share one PostgreSQL (its max_connections).
        return _pooled(create_async_engine(
            url, pool_pre_ping=True,
            pool_size=int_setting(os.environ, ENV_DB_POOL_SIZE, 10, 1),
            max_overflow=int_setting(os.environ, ENV_DB_MAX_OVERFLOW, 20, 0)))
    pool: dict[str, int] = {}  # in memory: SQLAlchemy's one static connection
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        pool = {"pool_size": int_setting(os.environ, ENV_SQLITE_POOL_SIZE,
                                         DEFAULT_SQLITE_POOL_SIZE, 1),
                "max_overflow": 0}
    engine = create_async_engine(url, connect_args={"timeout": 30}, **pool)

    @event.listens_for(engine.sync_engine, "connect")
    def _pragmas(dbapi_conn, _record):
        apply_sqlite_pragmas(dbapi_conn)

    return _pooled(engine)


def _pooled(engine: AsyncEngine) -> AsyncEngine:
    """Registers an engine with a connection pool for `release_idle_connections`."""
    if isinstance(engine.sync_engine.pool, QueuePool):
        _POOLED.add(engine)
    return engine


# How long closing an engine's idle connections, and opening its next one, may take.
RELEASE_TIMEOUT = 10.0


async def release_idle_connections(timeout: float = RELEASE_TIMEOUT) -> int:
    """Closes the connections idle in the pools of engines made by make_engine,
    when there are more than one, then opens one so that the next query does
    not wait for it. Connections in use are left alone (on PostgreSQL the
    workflow writer keeps its own checked out). Returns how many engines had
    idle connections closed.

    Servers call this once a busy spell is over, before giving free heap back:
    an idle SQLite connection holds a thread (under aiosqlite), its page cache
    and statement cache, an idle asyncpg connection its prepared statements,
    and a burst opens all of a pool's.
    """
    released = 0
    for engine in list(_POOLED):
        pool = engine.sync_engine.pool
        if not isinstance(pool, QueuePool) or pool.checkedin() <= 1 \
                or not _has_queue_internals(pool):
            continue
        released += 1
        try:
            async with asyncio.timeout(timeout):
                await greenlet_spawn(_close_checked_in, pool)
                async with engine.connect():
                    pass
        except Exception:  # noqa: BLE001 - the next query opens one, or reports why not
            log.warning("closing idle database connections failed", exc_info=True)
    return released


def _has_queue_internals(pool) -> bool:
    """Whether the pool has the QueuePool internals `_close_checked_in` uses (those of
    SQLAlchemy 2.0 and 2.1); another version's pool keeps its connections."""
    return hasattr(pool, "_pool") and hasattr(pool, "_dec_overflow")


def _close_checked_in(pool: QueuePool) -> None:
    """What QueuePool.dispose does for the connections in the queue, except that
    connections checked out stay counted (dispose assumes there are none): each
    one taken out is no longer counted, as when the queue is full on check-in."""
    while True:
        try:
            record = pool._pool.get(False)
        except sqla_queue.Empty:
            return
        pool._dec_overflow()
        record.close()


def _upgrade(connection, config: Config) -> None:
    from alembic import command

    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def migrate(engine: AsyncEngine, script_location: str, version_table: str) -> None:
    """Brings the schema to head; safe when several replicas start at once."""
    # Alembic is imported here, by the services that migrate, not by every
    # importer of baton_core (the CLI would spend ~0.4 s starting).
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", script_location)
    config.attributes["version_table"] = version_table
    for attempt in range(5):
        try:
            async with engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    lock_id = zlib.crc32(version_table.encode())
                    await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": lock_id})
                await conn.run_sync(_upgrade, config)
            return
        except OperationalError:
            if attempt == 4:
                raise
            log.warning("migration raced with another process; retrying")


def run_alembic_env() -> None:
    """Body of every service's migrations/env.py (online mode, given connection)."""
    from alembic import context

    config = context.config
    context.configure(
        connection=config.attributes["connection"],
        version_table=config.attributes["version_table"],
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


@functools.cache
def insert_ignoring_conflicts(dialect: str, table: Table) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING in `dialect` (its rows come from parameters)."""
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(table).on_conflict_do_nothing()
