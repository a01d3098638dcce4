"""The background task that expires leases and prunes the outbox."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time

from baton_core import utcnow

from ._constants import ENDPOINT_RETENTION, EVENT_RETENTION, PRUNE_INTERVAL, SWEEP_INTERVAL
from ._leases import LeaseStore

log = logging.getLogger("baton.registry.sweeper")


class Sweeper:
    """Expires leases every `interval` seconds; now and then forgets old endpoints and events."""

    def __init__(self, leases: LeaseStore, interval: float = SWEEP_INTERVAL) -> None:
        self._leases = leases
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="registry-sweeper")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass

    async def _run(self) -> None:
        next_prune = time.monotonic() + PRUNE_INTERVAL
        while True:
            try:
                expired = await self._leases.expire(utcnow())
                if expired:
                    log.info("leases lapsed on %s", ", ".join(expired))
                if time.monotonic() >= next_prune:
                    next_prune = time.monotonic() + PRUNE_INTERVAL
                    now = utcnow()
                    await self._leases.forget(now - dt.timedelta(seconds=ENDPOINT_RETENTION))
                    await self._leases.prune_events(now - dt.timedelta(seconds=EVENT_RETENTION))
            except Exception:  # noqa: BLE001 - keep sweeping through a database hiccup
                log.exception("lease sweep failed")
            await asyncio.sleep(self._interval)
