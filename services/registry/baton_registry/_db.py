"""The registry's database: engine lifecycle and its two kinds of transaction.

Writes are serialized (SQLite `BEGIN IMMEDIATE`, a PostgreSQL advisory lock)
so that outbox ids commit in increasing order: a watch that has read up to id
N can never later find a smaller id committed. Reads run in one snapshot
(SQLite deferred `BEGIN` under WAL, PostgreSQL REPEATABLE READ), so a method,
its tags and its endpoints, or a watch's initial state and the outbox id it
was taken at, always agree.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from baton_core import is_sqlite, make_engine, migrate

from ._constants import VERSION_TABLE

MIGRATIONS = str(Path(__file__).parent / "migrations")
_WRITE_LOCK = zlib.crc32(b"baton.registry.write")
_WRITE = "baton_registry_write"
_EVENTS_WRITTEN = "baton_registry_events_written"


def mark_events_written(conn: AsyncConnection) -> None:
    """Tells `Database.write` to wake local watchers once this transaction commits."""
    conn.info[_EVENTS_WRITTEN] = True


class Database:
    """Owns the engine; `write()` and `read()` hand out transactions."""

    def __init__(self, url: str, on_commit: Callable[[], None] = lambda: None) -> None:
        self.url = url
        self._on_commit = on_commit
        self._engine: AsyncEngine | None = None

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise RuntimeError("database is not open")
        return self._engine

    async def open(self) -> None:
        if self._engine is not None:
            return
        engine = make_engine(self.url)
        if is_sqlite(engine):
            _take_over_sqlite_begin(engine)
        await migrate(engine, MIGRATIONS, VERSION_TABLE)
        self._engine = engine

    async def close(self) -> None:
        engine, self._engine = self._engine, None
        if engine is not None:
            await engine.dispose()

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A serialized write transaction; `on_commit` runs if it wrote events."""
        async with self.engine.connect() as conn:
            conn = await conn.execution_options(**{_WRITE: True})
            conn.info.pop(_EVENTS_WRITTEN, None)
            async with conn.begin():
                if conn.dialect.name == "postgresql":
                    await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                                       {"key": _WRITE_LOCK})
                yield conn
            if conn.info.pop(_EVENTS_WRITTEN, False):
                self._on_commit()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only transaction over one consistent snapshot."""
        async with self.engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn = await conn.execution_options(isolation_level="REPEATABLE READ")
            async with conn.begin():
                yield conn


def _take_over_sqlite_begin(engine: AsyncEngine) -> None:
    # The sqlite3 driver only begins a transaction before DML, so reads would
    # each see a different snapshot; we emit BEGIN ourselves instead.
    @event.listens_for(engine.sync_engine, "connect")
    def _no_driver_begin(dbapi_conn, _record) -> None:
        dbapi_conn.isolation_level = None

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn) -> None:
        immediate = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
