"""The read and write paths: SQL commits first, Redis follows; Redis answers reads.

Writes commit in SQL (with their event), then update the hot tier in one
Redis round trip, best effort. Reads try the hot tier first and fall back to
SQL, refilling Redis on the way out.

Activity: a read (GetSession, FindOrCreateSession) counts as activity but,
to keep reads free of SQL writes, only refreshes the record and its TTL in
Redis. SQL hears of it later, when Redis's last activity runs ahead of
SQL's by more than `activity_lag` x ttl, or when the record is due for its
periodic refresh (`refresh_interval`); the expiry sweep asks Redis before
expiring (see `_expiry.py`).
"""

from __future__ import annotations

import asyncio
import builtins
import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from baton_core import Aborted

from . import _records as r
from ._cache import HotTier
from ._config import SessionsConfig
from ._convert import encode_execution
from ._events import EventHub
from ._expiry import Expirer
from ._history import HistoryStore
from ._records import ExecutionRecord, HotSession, SessionRecord, now_us
from ._store import SessionStore

log = logging.getLogger("baton.sessions")

_RETRIES = 8


class Sessions:
    """What the servicer asks of the service, free of protobuf."""

    def __init__(self, store: SessionStore, history: HistoryStore, cache: HotTier,
                 hub: EventHub, expirer: Expirer, config: SessionsConfig) -> None:
        self.store = store
        self.history = history
        self.cache = cache
        self.hub = hub
        self.expirer = expirer
        self.config = config
        self._lag_us = int(config.ttl * config.activity_lag * 1_000_000)
        self._refresh_us = int(config.refresh_interval * 1_000_000)
        self._refreshing: dict[str, asyncio.Task] = {}

    async def stop(self) -> None:
        tasks = list(self._refreshing.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def get(self, session_id: str, reader: str = "") -> SessionRecord:
        """The session; the read is activity, unless `reader` (the user the caller must
        be, '' for anyone) is not its user: that read is refused, and changes nothing."""
        hot = await self.cache.get(session_id, reader)
        if hot is not None:
            if not reader or hot.record.user_id == reader:
                self._refresh_later(hot)
            return hot.record
        record = await self.store.get(session_id)
        if reader and record.user_id != reader:
            return record
        return await self._warm(record)

    async def find_or_create(self, user_id: str, casefile_id: str) -> tuple[SessionRecord, bool]:
        """The SQL partial unique index decides races; the Redis index is a fast path."""
        hot = await self.cache.find(user_id, casefile_id)
        if hot is not None:
            self._refresh_later(hot)
            return hot.record, False
        for _ in range(_RETRIES):
            found = await self.store.find_active(user_id, casefile_id)
            if found is not None:
                found = await self._warm(found)
                if found.status == r.ACTIVE:
                    return found, False
                continue  # it was idle and has just expired
            created = await self.store.insert(user_id, casefile_id, {})
            if created is not None:
                await self._changed(created, index=True)
                return created, True
        raise Aborted("too much contention finding the session; retry")

    async def create(self, user_id: str, casefile_id: str, labels: dict[str, str],
                     request_id: str) -> SessionRecord:
        record, created = await self.store.create(user_id, casefile_id, labels, request_id)
        if created:
            await self._changed(record, index=True)
        return record

    async def close(self, session_id: str) -> SessionRecord:
        record, changed = await self.store.close(session_id)
        if changed:
            await self._changed(record)
        return record

    async def link(self, session_id: str, casefile_id: str) -> SessionRecord:
        record, previous = await self.store.link(session_id, casefile_id)
        if previous is not None:
            await self._changed(record, index=True, previous_casefile=previous)
        return record

    async def track(self, execution: ExecutionRecord) -> ExecutionRecord:
        record, stored = await self.history.track(execution)
        if record is not None:
            await self._changed(record, executions=[encode_execution(stored)])
        return stored

    async def update_context(self, session_id: str, values: dict[str, Any], paths: list[str],
                             etag: str) -> SessionRecord:
        record = await self.store.update_context(session_id, values, paths, etag,
                                                 self.config.context_max_bytes)
        await self._changed(record)
        return record

    async def list(self, user_id: str, casefile_id: str, status: str, limit: int,
                   before_id: str) -> list[SessionRecord]:
        """Sessions newest first, from SQL (the only place that can filter them)."""
        return await self.store.list(user_id, casefile_id, status, limit, before_id)

    async def recent_executions(self, session_id: str, count: int
                                ) -> tuple[builtins.list[bytes], int] | None:
        """The newest `count` executions from Redis as (encoded, seq of the last one).

        None when Redis cannot vouch for the page: history missing or
        incomplete, or the page reaching past what Redis keeps.
        """
        if count > self.config.history_limit:
            return None
        hot = await self.cache.history(session_id, count + 1)
        if hot is None:
            return None
        total, size, entries = hot
        if size < min(total, self.config.history_limit):
            return None  # Redis missed some: flushed, or a write still on its way
        if len(entries) > count:
            return [m for m, _ in entries[:count]], entries[count - 1][1]
        if size == total:
            return [m for m, _ in entries], 0
        return None

    async def executions(self, session_id: str, count: int,
                         before_seq: int) -> builtins.list[ExecutionRecord]:
        """A page from SQL; a first page also refills the hot tier's history."""
        if before_seq:
            return await self.history.executions(session_id, count, before_seq)
        limit = self.config.history_limit
        rows = await self.history.executions(session_id, max(count, limit))
        await self.cache.add_history(session_id, [encode_execution(x) for x in rows[:limit]])
        return rows[:count]

    async def _warm(self, record: SessionRecord) -> SessionRecord:
        """After a miss: expires the session if idle, else refills Redis; the read is activity."""
        if self.expirer.is_idle(record):
            expired = await self.expirer.expire_idle(
                [(record.session_id, record.last_activity_time)])
            if expired:
                return expired[0]
        if record.status != r.ACTIVE:
            await self.cache.put(record, publish=False)
            return record
        now = now_us()
        await self.cache.put(record, activity=now, index=True, publish=False)
        self._refresh_later(HotSession(replace(record, last_activity_time=now),
                                       record.last_activity_time, now))
        return replace(record, last_activity_time=now)

    async def _changed(self, record: SessionRecord, *,
                       executions: Sequence[tuple[int, bytes]] = (), index: bool = False,
                       previous_casefile: str | None = None) -> None:
        """After a commit: wake local watchers, then bring Redis up to date."""
        self.hub.notify(record.session_id)
        await self.cache.put(record, executions=executions, index=index,
                             previous_casefile=previous_casefile)

    def _refresh_later(self, hot: HotSession) -> None:
        """Tells SQL of reads it has not heard of, and re-reads an old hot record."""
        record, now = hot.record, now_us()
        lagging = record.last_activity_time - hot.sql_activity_time > self._lag_us
        if not lagging and now - hot.refreshed_time <= self._refresh_us:
            return
        sid = record.session_id
        if sid not in self._refreshing:
            activity = record.last_activity_time if lagging else None
            task = asyncio.create_task(self._refresh(sid, activity))
            self._refreshing[sid] = task
            task.add_done_callback(lambda _: self._refreshing.pop(sid, None))

    async def _refresh(self, session_id: str, activity: int | None) -> None:
        try:
            if activity is not None:
                record = await self.store.record_activity(session_id, activity)
            else:
                record = await self.store.get(session_id)
            await self.cache.put(record, index=True, publish=False)
        except Exception:  # noqa: BLE001 - the next read tries again
            log.warning("refreshing session %s from SQL failed", session_id, exc_info=True)
