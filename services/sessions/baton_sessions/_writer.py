"""SQLite's one writer, with group commit.

Transactions queued while the writer thread is busy are committed together:
under load, many small commits (and thread hops) become one. If one of them
raises, the group is rolled back and run again with each transaction in its
own SAVEPOINT, so that the failing one undoes only itself; transactions are
functions of their connection and arguments, so running one again is safe.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy.engine import Engine

T = TypeVar("T")
Transaction = Callable[..., T]

_MAX_GROUP = 128


class GroupWriter:
    """SQLite's one writer: transactions queued meanwhile share the next commit."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.thread = ThreadPoolExecutor(1, thread_name_prefix="sessions-sql-write")
        self._queue: list[tuple[Transaction, tuple[Any, ...], asyncio.Future]] = []
        self._drainer: asyncio.Task | None = None

    async def run(self, transaction: Transaction[T], args: tuple[Any, ...]) -> T:
        future = asyncio.get_running_loop().create_future()
        self._queue.append((transaction, args, future))
        if self._drainer is None:
            self._drainer = asyncio.create_task(self._drain())
        return await future

    async def stop(self) -> None:
        if self._drainer is not None:
            await asyncio.gather(self._drainer, return_exceptions=True)
        await asyncio.to_thread(self.thread.shutdown, True)
        self.engine.dispose()

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        batch: list = []
        try:
            while self._queue:
                batch, self._queue = self._queue[:_MAX_GROUP], self._queue[_MAX_GROUP:]
                outcomes = await loop.run_in_executor(self.thread, self._commit, batch)
                for (_, _, future), (ok, value) in zip(batch, outcomes, strict=True):
                    if not future.done():
                        future.set_result(value) if ok else future.set_exception(value)
        finally:
            self._drainer = None
            # Cancelled (the loop is closing): no caller may wait forever. The
            # batch in the thread may still commit; its callers cannot know.
            for _, _, future in [*batch, *self._queue]:
                if not future.done():
                    future.set_exception(RuntimeError("the SQL writer stopped"))
            self._queue.clear()

    def _commit(self, batch: list) -> list[tuple[bool, Any]]:
        """Runs in the writer thread: the whole group in one transaction."""
        try:
            with self.engine.begin() as conn:
                return [(True, transaction(conn, *args)) for transaction, args, _ in batch]
        except Exception as exc:  # noqa: BLE001 - handed to the caller(s)
            if len(batch) == 1:
                return [(False, exc)]
        return self._commit_each(batch)

    def _commit_each(self, batch: list) -> list[tuple[bool, Any]]:
        outcomes: list[tuple[bool, Any]] = []
        try:
            with self.engine.begin() as conn:
                for transaction, args, _ in batch:
                    savepoint = conn.begin_nested()
                    try:
                        outcomes.append((True, transaction(conn, *args)))
                        savepoint.commit()
                    except Exception as exc:  # noqa: BLE001 - handed to its caller
                        savepoint.rollback()
                        outcomes.append((False, exc))
        except Exception as exc:  # noqa: BLE001 - the commit failed: none of it is stored
            return [(False, exc)] * len(batch)
        return outcomes
