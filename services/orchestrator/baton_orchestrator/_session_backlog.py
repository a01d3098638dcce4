"""The SQL copy of the executions waiting for the sessions service (ctl_session_backlog).

Each row belongs to the orchestrator that stored it (`owner`, the workflow
engine's replica name), which renews its claim every `RENEW_EVERY` seconds. A
replica takes over only rows whose claim has lapsed (`LAPSE_AFTER`): those of
one that stopped or died; one restarted under the same name (as `baton up`
names its own) takes its rows back at once. Taking over is one UPDATE whose
WHERE is checked again under the row's lock, so two replicas never both take a
row.

Rows are written in groups: a store waits for the transaction that carries its
row, and the stores that arrive while one is written go together in the next
(an outage of the sessions service under load stored one row per transaction
before, ~1.4 ms each on SQLite).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from baton.sessions.v1 import sessions_pb2
from baton_core import Identity, finish_before_cancel, insert_ignoring_conflicts

from ._control_tables import session_backlog as t

log = logging.getLogger("baton.orchestrator.sessions")

RENEW_EVERY = 10.0
LAPSE_AFTER = 30.0


@dataclass(frozen=True)
class Waiting:
    """One stored execution and the identity it was made under."""

    execution: sessions_pb2.Execution
    identity: Identity


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class StoredBacklog:
    """The rows of one owner: stored in groups, forgotten once recorded, renewed,
    and taken over from owners whose claim lapsed."""

    def __init__(self, db: AsyncEngine, owner: str) -> None:
        self._db = db
        self.owner = owner
        self._insert = insert_ignoring_conflicts(db.dialect.name, t)
        self._rows: list[dict[str, Any]] = []
        self._group: asyncio.Future[None] | None = None  # the group being filled
        self._writer: asyncio.Task[None] | None = None

    async def store(self, execution: sessions_pb2.Execution, identity: Identity) -> None:
        """Returns once the row is committed (with those stored meanwhile); raises
        what the write raised."""
        self._rows.append({
            "execution_id": execution.execution_id, "execution": execution.SerializeToString(),
            "actor": identity.subject, "roles": list(identity.roles), "via": identity.via,
            "owner": self.owner, "time": _now()})
        if self._group is None:
            self._group = asyncio.get_running_loop().create_future()
        group = self._group
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_groups(), name="sessions-backlog-store")
        # Shielded: a caller that goes away does not stop the write of the others' rows.
        await asyncio.shield(group)

    async def _write_groups(self) -> None:
        while self._rows:
            rows, self._rows = self._rows, []
            group, self._group = self._group, None
            try:
                async with self._db.begin() as conn:
                    await conn.execute(self._insert, rows)
            except BaseException as exc:  # handed to each store that waits
                if group is not None and not group.done():
                    group.set_exception(exc if isinstance(exc, Exception)
                                        else RuntimeError("the backlog's writer stopped"))
                    group.exception()  # read here too: every waiter may be gone
                if not isinstance(exc, Exception):
                    self._fail_waiting()
                    raise
                continue
            if group is not None and not group.done():
                group.set_result(None)

    def _fail_waiting(self) -> None:
        """The stores still waiting for a group that will not be written now."""
        group, self._group, self._rows = self._group, None, []
        if group is not None and not group.done():
            group.set_exception(RuntimeError("the backlog's writer stopped"))
            group.exception()

    async def close(self) -> None:
        """Lets the groups being written finish; a store still waiting after that
        fails (its execution waits in memory only)."""
        writer, self._writer = self._writer, None
        if writer is not None:
            await asyncio.gather(writer, return_exceptions=True)
        self._fail_waiting()

    @finish_before_cancel
    async def forget(self, execution_ids: Iterable[str]) -> None:
        ids = list(execution_ids)
        if ids:
            async with self._db.begin() as conn:
                await conn.execute(sa.delete(t).where(t.c.execution_id.in_(ids)))

    @finish_before_cancel
    async def claim(self, limit: int, holding: set[str]) -> list[Waiting]:
        """Renews this owner's rows and, with room for `limit` more, takes over those
        whose owner's claim lapsed; returns this owner's rows that are not in
        `holding`, oldest first."""
        now = _now()
        async with self._db.begin() as conn:
            await conn.execute(sa.update(t).where(t.c.owner == self.owner).values(time=now))
            if limit <= 0:  # full: renew only (the rows of others stay for those with room)
                return []
            await conn.execute(sa.update(t).where(
                t.c.owner != self.owner,
                t.c.time < now - dt.timedelta(seconds=LAPSE_AFTER)).values(
                    owner=self.owner, time=now))
            rows = (await conn.execute(sa.select(t).where(t.c.owner == self.owner)
                                       .order_by(t.c.id).limit(limit + len(holding)))).all()
        return [Waiting(sessions_pb2.Execution.FromString(row.execution),
                        Identity(row.actor, tuple(row.roles or ()), row.via))
                for row in rows if row.execution_id not in holding][:limit]
