"""WatchMethods: a snapshot of every method, then the outbox tailed from that point."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from . import _outbox as outbox
from . import _rows as rows
from ._constants import WATCH_BATCH, WATCH_POLL_INTERVAL
from ._db import Database
from ._models import Change, ChangeType, Method
from ._tables import methods


class ChangeFeed:
    """Wakes this process's watches when it commits events.

    Commits by other replicas are only seen by polling.
    """

    def __init__(self) -> None:
        self.version = 0
        self.closed = False
        self._event = asyncio.Event()

    def notify(self) -> None:
        self.version += 1
        event, self._event = self._event, asyncio.Event()
        event.set()

    def close(self) -> None:
        self.closed = True
        self.notify()

    async def wait(self, seen_version: int, timeout: float) -> None:
        """Returns once a commit after `seen_version` happened, or after `timeout`."""
        if self.version != seen_version or self.closed:
            return
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            pass


class Watcher:
    """Produces the change stream of WatchMethods."""

    def __init__(self, db: Database, feed: ChangeFeed,
                 poll_interval: float = WATCH_POLL_INTERVAL) -> None:
        self._db = db
        self._feed = feed
        self._poll_interval = poll_interval

    async def watch(self, domain: str = "") -> AsyncIterator[Change]:
        """EXISTING for every method, SYNCED, then UPSERTED/DELETED until the feed closes."""
        # The state and the outbox position come from one snapshot, and writes
        # commit in id order, so tailing from `cursor` neither misses a change
        # nor repeats one already in the state.
        async with self._db.read() as conn:
            cursor = await outbox.last_id(conn)
            where = [methods.c.domain == domain] if domain else []
            current = await rows.select_methods(conn, *where)
        known = {method.name for method in current}
        for method in current:
            yield Change(ChangeType.EXISTING, method)
        yield Change(ChangeType.SYNCED)
        while not self._feed.closed:
            seen = self._feed.version
            async with self._db.read() as conn:
                batch = await outbox.read_after(conn, cursor, WATCH_BATCH)
            for event_id, change in batch:
                cursor = event_id
                visible = _visible(change, domain, known)
                if visible is not None:
                    yield visible
            if len(batch) < WATCH_BATCH:
                await self._feed.wait(seen, self._poll_interval)


def _visible(change: Change, domain: str, known: set[str]) -> Change | None:
    """What a watch of `domain` sees of `change`; moving out of the domain reads as DELETED."""
    assert change.method is not None
    name = change.method.name
    if not domain:
        return change
    if change.type is ChangeType.UPSERTED and change.method.domain == domain:
        known.add(name)
        return change
    if name in known:
        known.discard(name)
        return Change(ChangeType.DELETED, Method(name=name))
    return None
