"""SQL plumbing shared by the stores: engines, transactions, row conversions.

A transaction is a plain function of a SQLAlchemy Connection, run whole:

- on PostgreSQL through the async engine (`run_sync`, asyncpg underneath);
- on SQLite in a thread, through a sync engine: one thread hop per
  transaction instead of one per statement (aiosqlite's way), which is most
  of the cost of a small transaction. Writes go through one writer thread
  (`_writer.py`) and start with BEGIN IMMEDIATE, so a write transaction
  holds SQLite's write lock from its first read on; other processes wait in
  the busy handler. Reads run in a small pool of reader threads (WAL: they
  do not block the writer).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from baton_core import apply_sqlite_pragmas, make_engine, migrate, read_store_id

from . import _tables as t
from ._records import EventRecord, ExecutionRecord, SessionRecord
from ._writer import GroupWriter, T, Transaction

MIGRATIONS = str(Path(__file__).parent / "migrations")
VERSION_TABLE = "alembic_version_sessions"
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_US = dt.timedelta(microseconds=1)
_READERS = 2



def to_datetime(us: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(microseconds=us)


def to_us(value: dt.datetime) -> int:
    if value.tzinfo is None:  # SQLite drops the zone; we only ever store UTC
        value = value.replace(tzinfo=dt.UTC)
    return (value - _EPOCH) // _US


def _sqlite_engine(url: str, begin: str) -> Engine:
    engine = sa.create_engine(make_url(url).set(drivername="sqlite"),
                              connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None  # we say BEGIN ourselves (below)
        apply_sqlite_pragmas(dbapi_conn)

    @event.listens_for(engine, "begin")
    def _begin(conn):
        conn.exec_driver_sql(begin)

    return engine


class Database:
    """Runs transactions on the service's database; `start` migrates it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.dialect = ""
        self._async: AsyncEngine | None = None
        self._writer: GroupWriter | None = None
        self._reader: Engine | None = None
        self._read_threads: ThreadPoolExecutor | None = None
        # The random name of this database (sessions_meta), which scopes its
        # keys in Redis; read once the migrations have run.
        self.store_id = ""

    async def start(self) -> None:
        if self.dialect:
            return
        engine = make_engine(self.url)
        await migrate(engine, MIGRATIONS, VERSION_TABLE)
        self.store_id = await read_store_id(engine, t.meta)
        if engine.dialect.name == "sqlite":
            await engine.dispose()
            self._writer = GroupWriter(_sqlite_engine(self.url, "BEGIN IMMEDIATE"))
            self._reader = _sqlite_engine(self.url, "BEGIN")
            self._read_threads = ThreadPoolExecutor(_READERS,
                                                    thread_name_prefix="sessions-sql-read")
        else:
            self._async = engine
        self.dialect = engine.dialect.name

    async def stop(self) -> None:
        self.dialect = ""
        engine, self._async = self._async, None
        if engine is not None:
            await engine.dispose()
        writer, self._writer = self._writer, None
        if writer is not None:
            await writer.stop()
        readers, self._read_threads = self._read_threads, None
        if readers is not None:
            await asyncio.to_thread(readers.shutdown, True)
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.dispose()

    async def write(self, transaction: Transaction[T], *args: Any) -> T:
        """Runs transaction(conn, *args) and commits; an exception rolls it back."""
        if self._async is not None:
            async with self._async.begin() as conn:
                return await conn.run_sync(transaction, *args)
        if self._writer is None:
            raise RuntimeError("Database.start() has not run")
        return await self._writer.run(transaction, args)

    async def read(self, transaction: Transaction[T], *args: Any) -> T:
        """Runs transaction(conn, *args) on one consistent snapshot."""
        if self._async is not None:
            async with self._async.connect() as conn:
                return await conn.run_sync(transaction, *args)
        return await self._in_thread(self._read_threads, self._reader, transaction, args)

    @staticmethod
    async def _in_thread(pool: ThreadPoolExecutor | None, engine: Engine | None,
                         transaction: Transaction[T], args: tuple[Any, ...]) -> T:
        if pool is None or engine is None:
            raise RuntimeError("Database.start() has not run")

        def run() -> T:
            with engine.begin() as conn:
                return transaction(conn, *args)

        return await asyncio.get_running_loop().run_in_executor(pool, run)


_APPEND_EVENT = t.events.insert()


def append_event(conn: Connection, session_id: str, sequence: int, kind: str,
                 data: dict[str, Any], now: int) -> None:
    """Writes one outbox event in the caller's transaction."""
    conn.execute(_APPEND_EVENT, {"session_id": session_id, "sequence": sequence, "type": kind,
                                 "data": data, "create_time": to_datetime(now)})


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
