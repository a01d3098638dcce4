"""Database writes that a cancellation does not cut in half.

A transaction on SQLite through aiosqlite that is cancelled midway can leave
its connection behind, outside the pool, still holding SQLite's write lock:
every later write then waits out the busy timeout (30 s) and fails, until the
process ends. Cancellation reaches a write when a task is stopped (a lease
loop at a graceful stop) or a caller goes away (a client's deadline). A write
wrapped here runs to its end in a task of its own; the caller is cancelled
once it has.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


def finish_before_cancel(fn: Callable[P, Coroutine[Any, Any, T]]
                         ) -> Callable[P, Coroutine[Any, Any, T]]:
    """Runs each call of `fn` to its end even when the caller is cancelled meanwhile;
    the caller's CancelledError comes once it has ended."""

    @functools.wraps(fn)
    async def call(*args: P.args, **kwargs: P.kwargs) -> T:
        task = asyncio.ensure_future(fn(*args, **kwargs))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            # The write goes on; wait for it (a second cancellation of the caller
            # does not cut it either), then let the cancellation through.
            while not task.done():
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait({task})
            if not task.cancelled():
                task.exception()  # retrieved: the caller is cancelled either way
            raise

    return call
