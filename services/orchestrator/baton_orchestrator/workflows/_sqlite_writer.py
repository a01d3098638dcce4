"""The writer's SQLite path: its transactions run straight on a sqlite3 connection.

Each statement is compiled by SQLAlchemy once (SQL text, parameter order and
the column types' bind processors, so values are stored exactly as SQLAlchemy
stores them) and then executed with the DBAPI. Going through a SQLAlchemy
Connection costs about 100 us of Python per statement; this costs a few,
which is most of a step's commit on SQLite.

Many rows for one INSERT go as multi-row INSERTs, not executemany: executemany
steps SQLite once per row and lets go of the GIL around each step, and taking
it back from a busy event loop each time cost that loop more than the insert
itself (the audit log's batches made Dispatch ~10% slower). Statements hold a
power of two of rows, at most 16: sqlite3 keeps every statement text it
prepared, so a text per batch size (and statements of thousands of rows) cost
the process tens of MB after a burst.

A small transaction is tried on the caller's thread first (`try_run`): handing
it to the writer's thread and back cost ~0.26 ms of wake-ups on top of its
~0.18 ms, on the critical path of a run's first and last commits. The try
never waits: when the connection is busy on the thread, or another
connection holds SQLite's write lock (busy timeout 0 for the try), the caller
goes through the thread, which waits as before. Nor does it checkpoint the
WAL: the connection's automatic checkpoints are off, and its owner calls
`checkpoint` on the thread every so many commits.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import Executable

from baton_core import SQLITE_BUSY_TIMEOUT_MS, apply_sqlite_pragmas

from ._compiled import Compiled, CompiledStatements

_DIALECT = sqlite.dialect(paramstyle="qmark")
# Host parameters one statement may hold (SQLITE_MAX_VARIABLE_NUMBER).
_MAX_VARIABLES = 32766 if sqlite3.sqlite_version_info >= (3, 32, 0) else 999
_MAX_ROWS = 16  # rows in one multi-row INSERT
# Plans of at most this many rows are tried inline (a step's commit has 4-6).
INLINE_ROWS = 32
# The audit log's batches, through the writer's lane, are tried inline up to
# this many rows (~12 us each: at most ~3 ms of the event loop at a time).
LANE_INLINE_ROWS = 256
_ROW = re.compile(r"^(INSERT INTO .+? VALUES )(\((?:\?, )*\?\))(.*)$", re.S)


class _Compiled(Compiled):
    """A statement for SQLite; a plain INSERT ... VALUES (?, ...) can also take
    many rows in one statement (`chunk` at a time)."""

    __slots__ = ("_multi", "_sql_for", "chunk")

    def __init__(self, statement: Executable, keys: Sequence[str] | None) -> None:
        super().__init__(statement, keys, _DIALECT)
        self._multi = _ROW.match(self.sql)
        fits = min(_MAX_ROWS, _MAX_VARIABLES // max(1, self.width)) if self._multi else 1
        self.chunk = 1 << (max(fits, 1).bit_length() - 1)  # the power of two at most `fits`
        self._sql_for: dict[int, str] = {}

    def multi_sql(self, count: int) -> str:
        """This INSERT with `count` rows of placeholders."""
        sql = self._sql_for.get(count)
        if sql is None:
            assert self._multi is not None  # else `chunk` is 1 and no call comes here
            head, row, tail = self._multi.groups()
            sql = self._sql_for[count] = head + ", ".join([row] * count) + tail
        return sql


class SqliteWriter:
    """Runs a writer's plans on its own sqlite3 connection (one thread uses it)."""

    def __init__(self, path: str, check: Callable[[int, int | None], None]) -> None:
        self._path = path
        self._check = check
        self._conn: sqlite3.Connection | None = None
        self._cursor: sqlite3.Cursor | None = None
        self._statements = CompiledStatements(_Compiled)
        # One transaction at a time on the connection, from either thread.
        self._lock = threading.Lock()

    def _connect(self) -> sqlite3.Cursor:
        cursor = self._cursor
        if cursor is None:
            conn = sqlite3.connect(self._path, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000,
                                   isolation_level=None,
                                   check_same_thread=False)
            apply_sqlite_pragmas(conn)
            # Checkpoints (a copy into the database file and an fsync) run on the
            # thread, from `checkpoint`, never inside an inline commit.
            conn.execute("PRAGMA wal_autocheckpoint=0")
            # Every statement goes through this one cursor: Connection.execute makes
            # a cursor per statement, and the connection keeps a weak reference to
            # each until it prunes them every 200 (~5 per commit here).
            cursor = self._cursor = conn.cursor()
            self._conn = conn
        return cursor

    def checkpoint(self) -> None:
        """Copies what the WAL holds into the database file, waiting for no one."""
        with self._lock:
            self._connect().execute("PRAGMA wal_checkpoint(PASSIVE)")

    def run(self, plan: Sequence[tuple[Executable, Any, int | None]]) -> None:
        """One transaction: each (statement, params, expected rowcount) in turn;
        waits for the connection and for SQLite's write lock."""
        with self._lock:
            self._transaction(self._connect(), plan)

    def try_run(self, plan: Sequence[tuple[Executable, Any, int | None]],
                max_rows: int = INLINE_ROWS) -> bool:
        """`run` if it needs no waiting: False (nothing written) when the plan has
        more than `max_rows` rows, the connection is in use or not open yet (opening
        it may wait), or SQLite's write lock is held elsewhere."""
        cursor = self._cursor
        if cursor is None or _rows(plan) > max_rows \
                or not self._lock.acquire(blocking=False):
            return False
        try:
            if not _begin_now(cursor):
                return False
            self._transaction(cursor, plan, begun=True)
            return True
        finally:
            self._lock.release()

    def _transaction(self, cursor: sqlite3.Cursor,
                     plan: Sequence[tuple[Executable, Any, int | None]],
                     begun: bool = False) -> None:
        if not begun:
            cursor.execute("BEGIN IMMEDIATE")
        try:
            for statement, params, expected in plan:
                self._check(self._execute(cursor, statement, params or [{}]), expected)
            cursor.execute("COMMIT")
        except BaseException as exc:
            cursor.execute("ROLLBACK")
            if isinstance(exc, sqlite3.IntegrityError):
                raise IntegrityError(str(statement), None, exc) from exc
            raise

    def _execute(self, cursor: sqlite3.Cursor, statement: Executable,
                 params: dict[str, Any] | list[dict[str, Any]]) -> int:
        compiled, values = self._statements.values(statement, params)
        if len(values) == 1:
            return cursor.execute(compiled.sql, values[0]).rowcount
        if compiled.chunk == 1:
            return cursor.executemany(compiled.sql, values).rowcount
        count, start, size = 0, 0, compiled.chunk
        while start < len(values):
            while start + size > len(values):  # the rest: in halving sizes
                size //= 2
            part = values[start:start + size]
            sql = compiled.multi_sql(size) if size > 1 else compiled.sql
            count += cursor.execute(sql, [v for row in part for v in row]).rowcount
            start += size
        return count

    def close(self) -> None:
        with self._lock:
            conn, self._conn, self._cursor = self._conn, None, None
            if conn is not None:
                conn.close()


def _rows(plan: Sequence[tuple[Executable, Any, int | None]]) -> int:
    return sum(len(params) if isinstance(params, list) else 1 for _, params, _ in plan)


def _begin_now(cursor: sqlite3.Cursor) -> bool:
    """BEGIN IMMEDIATE without waiting: False when another connection holds the
    write lock. The connection's busy timeout is as before either way."""
    cursor.execute("PRAGMA busy_timeout=0")
    try:
        cursor.execute("BEGIN IMMEDIATE")
        return True
    except sqlite3.OperationalError:  # SQLITE_BUSY
        return False
    finally:
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
