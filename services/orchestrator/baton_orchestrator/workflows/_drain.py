"""A replica's graceful stop: its runs drained, then given back.

A graceful stop drains first: no run and no step starts any more, and the
worker calls in flight get `drain_seconds` to finish, their outcomes committed
(a step that completes then is not called again after the restart, and its
dependants start under the next owner). What is still in flight after that is
cancelled; every run is then given back, to be resumed at once by the next
owner (this replica restarted under its name, or another).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping

from ._attempts import ExecutorContext
from ._config import EngineConfig
from ._executor import RunExecutor
from ._leases import renew_while_draining
from ._records import RunState
from ._runs import RunStore

log = logging.getLogger("baton.workflows")


async def stop_runs(executors: Mapping[str, RunExecutor],
                    waiting: dict[str, tuple[RunState, float]], ctx: ExecutorContext,
                    runs: RunStore, replica: str, config: EngineConfig) -> None:
    """Drains the runs `replica` drives, cancels what is still in flight after that,
    and gives back every run it held, driven or waiting."""
    owned = [*executors, *waiting]
    await drain(executors, ctx, runs, replica, config)
    owned = list(dict.fromkeys([*owned, *executors, *waiting]))
    waiting.clear()
    await asyncio.gather(*(ex.abandon() for ex in list(executors.values())))
    with contextlib.suppress(Exception):
        await runs.release(replica, owned)


async def drain(executors: Mapping[str, RunExecutor], ctx: ExecutorContext, runs: RunStore,
                replica: str, config: EngineConfig) -> None:
    """Lets the calls in flight end within `drain_seconds`, starting nothing new,
    and commits their outcomes; the leases are renewed meanwhile."""
    tasks = [ex.task for ex in executors.values() if ex.task is not None]
    if not tasks:
        return
    ctx.draining.set()
    for executor in executors.values():
        executor.drain()
    log.info("draining %d runs (up to %.1fs)", len(tasks), config.drain_seconds)
    renewing = asyncio.create_task(
        renew_while_draining(runs, replica, config.lease_seconds), name="wf-drain-leases")
    try:
        _, running = await asyncio.wait(tasks, timeout=config.drain_seconds)
    finally:
        renewing.cancel()
        await asyncio.gather(renewing, return_exceptions=True)
    if running:
        log.warning("%d runs still had calls in flight after %.1fs; cancelling them",
                    len(running), config.drain_seconds)
