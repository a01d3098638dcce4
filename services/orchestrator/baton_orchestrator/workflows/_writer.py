"""Group commit: the state changes of many runs, written in one transaction.

Owners hand `Changes` to `commit()` and wait; one loop per shard drains its
queue and writes everything queued in one transaction, so under load a
commit carries the transitions of many runs. A run always maps to the same
shard, so its changes commit in the order they were made. Each change of an
owned run is fenced: the transaction checks that this replica still owns the
run, and a replica that lost its lease writes nothing (LeaseLost).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import bindparam, insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import Executable

from baton_core import Aborted

from . import _tables as t
from ._pg_writer import PgWriter
from ._records import Changes
from ._sqlite_writer import INLINE_ROWS, LANE_INLINE_ROWS, SqliteWriter

log = logging.getLogger("baton.workflows.writer")


class LeaseLost(Aborted):
    default_reason = "LEASE_LOST"


_Step = tuple[Any, Any, int | None]
# SQLite: the WAL is checkpointed on the writer's thread after this many
# transactions (a step's commit adds ~13 pages; SQLite's own default is at 1,000).
_CHECKPOINT_EVERY = 64


# Touches the runs being changed that this replica owns: as many rows as runs, or
# another replica has taken one over.
_FENCE = (update(t.runs).where(t.runs.c.run_id.in_(bindparam("f_run_ids", expanding=True)),
                               t.runs.c.owner == bindparam("f_owner"))
          .values(lease_expires_at=t.runs.c.lease_expires_at))
_FENCE_ONE = (update(t.runs).where(t.runs.c.run_id == bindparam("f_run_id"),
                                   t.runs.c.owner == bindparam("f_owner"))
              .values(lease_expires_at=t.runs.c.lease_expires_at))
_INSERT_RUNS, _INSERT_STEPS, _INSERT_EVENTS = (
    insert(t.runs), insert(t.run_steps), insert(t.run_events))
_UPDATE_RUN = (update(t.runs).where(t.runs.c.run_id == bindparam("b_run_id"))
               .values({c: bindparam(c) for c in ("status", "error", "retry_count",
                                                   "start_time", "end_time", "update_time",
                                                   "deadline")}))
_STEP_COLUMNS = ("status", "attempts", "first_attempt", "input", "output", "error",
                 "start_time", "end_time")
_UPDATE_STEP = (update(t.run_steps)
                .where(t.run_steps.c.run_id == bindparam("b_run_id"),
                       t.run_steps.c.step_id == bindparam("b_step_id"))
                .values({c: bindparam(c) for c in _STEP_COLUMNS}))


class Writer:
    """Serializes and batches state writes; `on_commit` sees each committed batch's events."""

    def __init__(self, engine: AsyncEngine, replica: str, shards: int = 1,
                 on_commit: Callable[[list[dict[str, Any]]], None] = lambda events: None,
                 max_batch: int = 512) -> None:
        self._engine = engine
        # SQLite: a whole transaction on a sqlite3 connection of its own, inline
        # when small and unhindered, else in one hop to a private thread; not one
        # hop per statement through aiosqlite.
        self._sqlite = (SqliteWriter(_sqlite_file(engine), self._check_count)
                        if engine.dialect.name == "sqlite" else None)
        # PostgreSQL on asyncpg: straight on the driver's connection (see _pg_writer).
        self._pg = (PgWriter(engine.dialect, _FENCE, self._check_count)
                    if engine.dialect.driver == "asyncpg" else None)
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="wf-writer")
        self._replica = replica
        self._on_commit = on_commit
        self._max_batch = max_batch
        self._queues: list[asyncio.Queue] = [asyncio.Queue() for _ in range(shards)]
        self._tasks: list[asyncio.Task] = []
        self._conns: dict[int, AsyncConnection] = {}
        self.commits = 0
        self.changes_written = 0
        self._uncheckpointed = 0  # SQLite transactions since the last WAL checkpoint

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._loop(i), name=f"wf-writer-{i}")
                       for i in range(len(self._queues))]

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._sqlite is not None:
            self._thread.submit(self._sqlite.close)
        self._thread.shutdown(wait=True)
        for queue in self._queues:
            while not queue.empty():
                _, future = queue.get_nowait()
                if not future.done():
                    future.set_exception(asyncio.CancelledError())

    async def commit(self, changes: Changes) -> None:
        """Returns once `changes` are committed; raises LeaseLost or the database error."""
        await self.submit(changes)

    def submit(self, changes: Changes) -> asyncio.Future:
        """Queues `changes` now (a run's changes commit in the order they were queued);
        the future is done once they are committed."""
        if not self._tasks:
            raise RuntimeError("the writer is not running")
        future = asyncio.get_running_loop().create_future()
        shard = zlib.crc32(changes.run_id.encode()) % len(self._queues)
        self._queues[shard].put_nowait((changes, future))
        return future

    async def _loop(self, shard: int) -> None:
        queue = self._queues[shard]
        try:
            while True:
                batch = [await queue.get()]
                while not queue.empty() and len(batch) < self._max_batch:
                    batch.append(queue.get_nowait())
                await self._write_batch(batch, shard)
        finally:
            conn = self._conns.pop(shard, None)
            if conn is not None:
                await asyncio.shield(conn.close())

    async def _write_batch(self, batch: list[tuple[Changes, asyncio.Future]],
                           shard: int) -> None:
        try:
            await self._transaction([c for c, _ in batch], shard)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - retried one by one to isolate the culprit
            if len(batch) == 1:
                _settle(batch[0][1], exc)
                return
            log.info("batch of %d failed (%s); writing one by one", len(batch), exc)
            for changes, future in batch:
                try:
                    await self._transaction([changes], shard)
                except asyncio.CancelledError:
                    raise
                except Exception as one:  # noqa: BLE001
                    _settle(future, one)
                else:
                    _settle(future, None)
                    self._published([changes])
            return
        for _, future in batch:
            _settle(future, None)
        self._published([c for c, _ in batch])

    def _published(self, written: Sequence[Changes]) -> None:
        events = [e for c in written for e in c.events]
        self.commits += 1
        self.changes_written += len(written)
        if events:
            try:
                self._on_commit(events)
            except Exception:  # noqa: BLE001 - observers never fail a commit
                log.exception("event observer failed")

    async def _transaction(self, batch: Sequence[Changes], shard: int) -> None:
        plan = self._plan(batch)
        if self._sqlite is not None:
            await self._on_sqlite(plan)
            return
        # Each shard keeps its connection: no pool checkout (and ping) per commit.
        conn = self._conns.get(shard)
        if conn is None:
            conn = self._conns[shard] = await self._engine.connect()
        try:
            if self._pg is not None:
                await self._pg.run(conn, plan)
            else:
                async with conn.begin():
                    for statement, params, expected in plan:
                        self._check(await conn.execute(statement, params), expected)
        except (LeaseLost, IntegrityError):
            raise
        except Exception:
            # The connection may be broken; the next batch opens a fresh one.
            self._conns.pop(shard, None)
            with contextlib.suppress(Exception):
                await conn.close()
            raise

    @property
    def sqlite_lane(self) -> Callable[[Executable, list[dict[str, Any]]],
                                       Awaitable[None]] | None:
        """On SQLite, a way for the process's other writers (the audit log) to insert
        rows on this writer's own connection, between its commits.

        SQLite has one write lock per database. A second connection writing to it
        from this process makes the two wait on each other through SQLite's busy
        handler, which sleeps for milliseconds at a time; one connection never waits.
        """
        if self._sqlite is None:
            return None
        return self._run_in_lane

    async def _run_in_lane(self, statement: Executable, rows: list[dict[str, Any]]) -> None:
        """Writes `rows` with `statement`, LANE_INLINE_ROWS rows per transaction, each
        tried inline, with the event loop free between them.

        The audit log writes every Dispatch's record (~2,000 a second under load);
        on the writer's thread its batches cost the event loop more than the inserts
        (the thread's Python and SQLite's GIL releases contend with the loop), and
        inline Dispatch ran 5-11% more calls a second.
        """
        if not self._tasks:
            raise RuntimeError("the writer is not running")
        for start in range(0, len(rows), LANE_INLINE_ROWS):
            if start:
                await asyncio.sleep(0)
            await self._on_sqlite([(statement, rows[start:start + LANE_INLINE_ROWS], None)],
                                  LANE_INLINE_ROWS)

    async def _on_sqlite(self, plan: list[_Step], inline_rows: int = INLINE_ROWS) -> None:
        """Runs `plan` inline when it is small and nothing is in the way, else on the
        writer's thread (see _sqlite_writer)."""
        sqlite = self._sqlite
        assert sqlite is not None  # only ever called on SQLite
        plan = _sqlite_plan(plan)
        if not sqlite.try_run(plan, inline_rows):
            await asyncio.get_running_loop().run_in_executor(self._thread, sqlite.run, plan)
        self._uncheckpointed += 1
        if self._uncheckpointed >= _CHECKPOINT_EVERY:
            self._uncheckpointed = 0
            with contextlib.suppress(RuntimeError):  # stopping: closing checkpoints anyway
                self._thread.submit(sqlite.checkpoint)

    def _check(self, result: Any, expected: int | None) -> None:
        self._check_count(result.rowcount, expected)

    def _check_count(self, rowcount: int, expected: int | None) -> None:
        if expected is not None and rowcount != expected:
            raise LeaseLost(f"this replica no longer owns {expected - rowcount} "
                            "of the runs it is writing", metadata={"replica": self._replica})

    def _plan(self, batch: Sequence[Changes]) -> list[_Step]:
        """The statements of one transaction; the first fences the runs being changed."""
        plan: list[_Step] = []
        fenced = sorted({c.run_id for c in batch if c.fence and not c.new_run})
        if fenced:
            plan.append((_FENCE, {"f_run_ids": fenced, "f_owner": self._replica},
                         len(fenced)))
        new_runs = [c.new_run for c in batch if c.new_run]
        if new_runs:
            plan.append((_INSERT_RUNS, new_runs, None))
        new_steps = [s for c in batch for s in c.new_steps]
        if new_steps:
            plan.append((_INSERT_STEPS, new_steps, None))
        run_rows = [c.run for c in batch if c.run]
        if run_rows:
            plan.append((_UPDATE_RUN, run_rows, None))
        step_rows = [_step_params(row) for c in batch for row in c.steps.values()]
        if step_rows:
            plan.append((_UPDATE_STEP, step_rows, None))
        events = [e for c in batch for e in c.events]
        if events:
            plan.append((_INSERT_EVENTS, events, None))
        return plan


def _sqlite_plan(plan: list[_Step]) -> list[_Step]:
    """`plan` with its fence as one statement per run: no expanding IN."""
    if plan and plan[0][0] is _FENCE:
        fence = plan[0][1]
        plan = [(_FENCE_ONE, [{"f_run_id": run_id, "f_owner": fence["f_owner"]}
                              for run_id in fence["f_run_ids"]], plan[0][2]), *plan[1:]]
    return plan


def _step_params(row: dict[str, Any]) -> dict[str, Any]:
    params = {c: row[c] for c in _STEP_COLUMNS}
    params["b_run_id"], params["b_step_id"] = row["run_id"], row["step_id"]
    return params


def _settle(future: asyncio.Future, exc: BaseException | None) -> None:
    if future.done():
        return
    if exc is None:
        future.set_result(None)
    else:
        future.set_exception(exc)


def _sqlite_file(engine: AsyncEngine) -> str:
    """The database file the writer opens a connection of its own to."""
    if not engine.url.database or engine.url.database == ":memory:":
        raise ValueError("workflows on SQLite need a database file, not an in-memory database")
    return engine.url.database
