"""Keeping the leases of the runs a replica owns: renewed every third of their
TTL (also while a graceful stop drains), and the runs whose lease was lost let
go of."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping

from ._executor import RunExecutor
from ._records import RunState
from ._runs import RunStore
from ._states import RUN_TERMINAL

log = logging.getLogger("baton.workflows")


async def keep_leases(tend: Callable[[], Awaitable[None]], lease_seconds: float) -> None:
    """Calls `tend` every third of the lease's TTL until cancelled."""
    interval = lease_seconds / 3
    while True:
        try:
            await tend()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the loop must outlive a database hiccup
            log.exception("lease upkeep failed; retrying in %.1fs", interval)
        await asyncio.sleep(interval)


async def renew_leases(runs: RunStore, replica: str, lease_seconds: float,
                       executors: Mapping[str, RunExecutor],
                       waiting: dict[str, tuple[RunState, float]]
                       ) -> tuple[set[str], set[str]]:
    """Renews the leases of the runs `replica` owns, and lets go of those it drives
    or keeps waiting whose lease was lost; returns the runs it owns and the runs
    flagged for cancellation."""
    asked = time.monotonic()
    owned, cancels = await runs.renew(replica, lease_seconds)
    for run_id, executor in list(executors.items()):
        # Only runs recorded before the renewal was asked can be missing from it.
        if run_id not in owned and executor.recorded_at is not None and \
                executor.recorded_at < asked and executor.state.status not in RUN_TERMINAL:
            log.warning("run %s: lease lost; stopping here", run_id)
            await executor.abandon()
    for run_id, (_, recorded_at) in list(waiting.items()):
        if run_id not in owned and recorded_at < asked:
            log.warning("run %s: lease lost while waiting for room", run_id)
            del waiting[run_id]
    return owned, cancels


async def renew_while_draining(runs: RunStore, replica: str, lease_seconds: float) -> None:
    interval = lease_seconds / 3
    while True:
        await asyncio.sleep(interval)
        try:
            await runs.renew(replica, lease_seconds)
        except Exception:  # noqa: BLE001 - a lapsed lease only fences the late commits
            log.warning("lease renewal failed while draining", exc_info=True)
