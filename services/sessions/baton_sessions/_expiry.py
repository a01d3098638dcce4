"""Expiry of idle sessions, recorded in SQL; safe with any number of replicas.

Reads refresh a session's activity in Redis only (SQL hears of it later, see
`Sessions`), so before expiring a session that SQL thinks idle we ask Redis
for its view. When Redis cannot be asked, the cutoff moves back by the lag
SQL may have (`activity_lag` x ttl): a session then expires late, never early.

Replicas race safely: the expiring UPDATE re-checks status and idleness in
its WHERE clause and returns only the rows it changed, so each expiry and its
event are written once. On PostgreSQL the rows are first taken with
FOR UPDATE SKIP LOCKED, so two sweeps never wait on (or deadlock over) the
same rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import _records as r
from . import _tables as t
from ._cache import HotTier
from ._config import SessionsConfig
from ._events import EventHub
from ._records import SessionRecord, now_us
from ._sql import Database, append_event, session_from_row, to_datetime, to_us
from ._store import MOVE_ACTIVITY

log = logging.getLogger("baton.sessions.expiry")

_S = t.sessions
_BATCH = 500


class Expirer:
    """Expires idle sessions, on demand and in a periodic sweep."""

    def __init__(self, db: Database, cache: HotTier, hub: EventHub,
                 config: SessionsConfig) -> None:
        self.db = db
        self.cache = cache
        self.hub = hub
        self.config = config
        self._ttl_us = int(config.ttl * 1_000_000)
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="sessions-expiry-sweep")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def is_idle(self, record: SessionRecord) -> bool:
        """Idle by SQL's clock alone (a candidate; `expire_idle` decides)."""
        return record.status == r.ACTIVE and record.last_activity_time < now_us() - self._ttl_us

    async def sweep_once(self) -> int:
        """Expires every session idle for longer than the TTL; returns how many."""
        expired, after = 0, ""
        while True:
            candidates = await self._candidates(now_us() - self._ttl_us, after)
            if not candidates:
                return expired
            expired += len(await self.expire_idle(candidates))
            after = candidates[-1][0]

    async def expire_idle(self, candidates: list[tuple[str, int]]) -> list[SessionRecord]:
        """Expires those of (session_id, SQL last activity) that are really idle."""
        now = now_us()
        seen = await self.cache.activity(sid for sid, _ in candidates)
        if seen is None:
            cutoff, fresher = now - int(self._ttl_us * (1 + self.config.activity_lag)), {}
        else:
            cutoff = now - self._ttl_us
            fresher = {sid: seen[sid] for sid, la in candidates
                       if seen.get(sid, 0) > max(la, cutoff)}
        if fresher:
            await self._record_activity(fresher)
        ids = [sid for sid, la in candidates if sid not in fresher and la < cutoff]
        if not ids:
            return []
        expired = await self._expire(ids, cutoff, now)
        for record in expired:
            self.hub.notify(record.session_id)
            await self.cache.put(record)
        if expired:
            log.info("expired %d idle session(s)", len(expired))
        return expired

    async def _candidates(self, cutoff: int, after: str) -> list[tuple[str, int]]:
        query = (sa.select(_S.c.session_id, _S.c.last_activity_time)
                 .where(_S.c.status == r.ACTIVE, _S.c.last_activity_time < to_datetime(cutoff),
                        _S.c.session_id > after)
                 .order_by(_S.c.session_id).limit(_BATCH))
        return await self.db.read(lambda conn: [
            (row.session_id, to_us(row.last_activity_time)) for row in conn.execute(query)])

    async def _record_activity(self, activity: dict[str, int]) -> None:
        await self.db.write(lambda conn: conn.execute(MOVE_ACTIVITY, [
            {"b_id": sid, "b_time": to_datetime(us)} for sid, us in activity.items()]))

    async def _expire(self, ids: list[str], cutoff: int, now: int) -> list[SessionRecord]:
        idle = (_S.c.session_id.in_(ids), _S.c.status == r.ACTIVE,
                _S.c.last_activity_time < to_datetime(cutoff))

        def expire(conn: Connection) -> list[SessionRecord]:
            locked = conn.execute(
                sa.select(_S.c.session_id).where(*idle).order_by(_S.c.session_id)
                .with_for_update(skip_locked=True)).scalars().all()
            if not locked:
                return []
            rows = conn.execute(
                sa.update(_S).where(_S.c.session_id.in_(locked), *idle[1:])
                .values(status=r.EXPIRED, end_time=to_datetime(now), version=_S.c.version + 1)
                .returning(*_S.c)).all()
            for row in rows:
                append_event(conn, row.session_id, row.version, r.EXPIRED_EVENT, {
                    "last_activity_time": to_datetime(to_us(row.last_activity_time))
                    .isoformat()}, now)
            return [session_from_row(row) for row in rows]

        return await self.db.write(expire)

    async def _loop(self) -> None:
        while True:
            try:
                await self.sweep_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the next sweep tries again
                log.warning("expiry sweep failed; retrying in %.1fs",
                            self.config.sweep_interval, exc_info=True)
            await asyncio.sleep(self.config.sweep_interval)
