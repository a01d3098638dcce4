"""Endpoint leases: heartbeats renew them, the sweeper lets lapsed ones go."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import delete, select, update

from baton_core import finish_before_cancel, utcnow

from . import _outbox as outbox
from . import _rows as rows
from ._db import Database
from ._models import EndpointState, WorkerLease
from ._tables import endpoints

_AVAILABLE = EndpointState.AVAILABLE.value


class LeaseStore:
    """SQL access to endpoint leases; state changes write UPSERTED events."""

    def __init__(self, db: Database) -> None:
        self._db = db

    @finish_before_cancel
    async def heartbeat(self, lease: WorkerLease, method_names: Sequence[str]) -> list[str]:
        """Renews `lease` on `method_names`, or on every method the worker serves.

        A heartbeat renews; it never adds: a named method the worker is not
        registered for (never, or no longer: deleted) is left alone.

        Returns:
            The names in `method_names` the worker is not registered for, which
            it should register again.
        """
        now = utcnow()
        unknown = []
        async with self._db.write() as conn:
            if method_names:
                targets = []
                for name in dict.fromkeys(method_names):
                    if await rows.endpoint_exists(conn, name, lease.worker_id):
                        targets.append(name)
                    else:
                        unknown.append(name)
            else:
                targets = list((await conn.execute(
                    select(endpoints.c.method_name)
                    .where(endpoints.c.worker_id == lease.worker_id))).scalars())
            for name in targets:
                if await rows.upsert_endpoint(conn, name, lease):
                    await outbox.record_upsert(conn, name, now)
        return unknown

    @finish_before_cancel
    async def expire(self, now: dt.datetime) -> list[str]:
        """Marks lapsed endpoints UNAVAILABLE; returns the methods that changed."""
        lapsed = (endpoints.c.state == _AVAILABLE) & (endpoints.c.lease_expire_time < now)
        # A cheap read first, so an idle sweeper never takes the write lock.
        async with self._db.read() as conn:
            probe = await conn.execute(select(endpoints.c.worker_id).where(lapsed).limit(1))
            if probe.first() is None:
                return []
        async with self._db.write() as conn:
            names = sorted(set((await conn.execute(
                select(endpoints.c.method_name).where(lapsed))).scalars()))
            await conn.execute(update(endpoints).where(lapsed)
                               .values(state=EndpointState.UNAVAILABLE.value))
            for name in names:
                await outbox.record_upsert(conn, name, now)
        return names

    @finish_before_cancel
    async def forget(self, before: dt.datetime) -> list[str]:
        """Deletes endpoints whose lease lapsed before `before`; returns the methods changed.

        Workers that pick a new id on every start would otherwise leave an
        UNAVAILABLE endpoint behind each time.
        """
        stale = ((endpoints.c.state == EndpointState.UNAVAILABLE.value)
                 & (endpoints.c.lease_expire_time < before))
        async with self._db.write() as conn:
            names = sorted(set((await conn.execute(
                select(endpoints.c.method_name).where(stale))).scalars()))
            if names:
                await conn.execute(delete(endpoints).where(stale))
            for name in names:
                await outbox.record_upsert(conn, name, utcnow())
        return names

    @finish_before_cancel
    async def prune_events(self, before: dt.datetime) -> int:
        async with self._db.write() as conn:
            return await outbox.prune(conn, before)
