"""SQL plumbing shared by the stores: engine lifecycle, write transactions, rows.

SQLite has one writer at a time: within a process, write transactions queue
on an asyncio lock instead of spinning in SQLite's busy handler; between
processes the busy timeout still applies. Every write transaction starts
with its write (or re-checks what it read in the write's WHERE clause), so
it is correct under SQLite's deferred transactions and PostgreSQL's READ
COMMITTED alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from baton_core import is_sqlite, make_engine, migrate

from . import _tables as t
from ._records import EventRecord, ExecutionRecord, SessionRecord

MIGRATIONS = str(Path(__file__).parent / "migrations")
VERSION_TABLE = "alembic_version_sessions"
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_US = dt.timedelta(microseconds=1)


def to_datetime(us: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(microseconds=us)


def to_us(value: dt.datetime) -> int:
    if value.tzinfo is None:  # SQLite drops the zone; we only ever store UTC
        value = value.replace(tzinfo=dt.UTC)
    return (value - _EPOCH) // _US


class Database:
    """One async engine with a write-transaction helper."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: AsyncEngine | None = None
        self._write_lock: asyncio.Lock | contextlib.nullcontext = contextlib.nullcontext()

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise RuntimeError("Database.start() has not run")
        return self._engine

    async def start(self) -> None:
        if self._engine is not None:
            return
        engine = make_engine(self.url)
        await migrate(engine, MIGRATIONS, VERSION_TABLE)
        if is_sqlite(engine):
            self._write_lock = asyncio.Lock()
        self._engine = engine

    async def stop(self) -> None:
        engine, self._engine = self._engine, None
        if engine is not None:
            await engine.dispose()

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction: committed on exit, rolled back on an exception."""
        async with self._write_lock, self.engine.begin() as conn:
            yield conn

    def read(self) -> contextlib.AbstractAsyncContextManager[AsyncConnection]:
        return self.engine.connect()

    def insert_ignoring_conflicts(self, table: sa.Table) -> Any:
        """INSERT ... ON CONFLICT DO NOTHING in this engine's dialect."""
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        return dialect.insert(table).on_conflict_do_nothing()


async def append_event(conn: AsyncConnection, session_id: str, sequence: int, kind: str,
                       data: dict[str, Any], now: int) -> None:
    """Writes one outbox event in the caller's transaction."""
    await conn.execute(t.events.insert().values(
        session_id=session_id, sequence=sequence, type=kind, data=data,
        create_time=to_datetime(now)))


def session_from_row(row: Any) -> SessionRecord:
    return SessionRecord(
        session_id=row.session_id, user_id=row.user_id, casefile_id=row.casefile_id,
        status=row.status, labels=dict(row.labels or {}),
        create_time=to_us(row.create_time), last_activity_time=to_us(row.last_activity_time),
        end_time=to_us(row.end_time) if row.end_time is not None else None,
        execution_count=row.execution_count, context=dict(row.context or {}), etag=row.etag,
        version=row.version)


def execution_from_row(row: Any) -> ExecutionRecord:
    return ExecutionRecord(
        execution_id=row.execution_id, session_id=row.session_id, operation=row.operation,
        status=row.status, duration_ns=row.duration_ns, error=row.error, run_id=row.run_id,
        step_id=row.step_id, actor=row.actor, create_time=to_us(row.create_time),
        result=dict(row.result or {}), seq=row.seq)


def event_from_row(row: Any) -> EventRecord:
    return EventRecord(session_id=row.session_id, sequence=row.sequence, type=row.type,
                       data=dict(row.data or {}), create_time=to_us(row.create_time))
