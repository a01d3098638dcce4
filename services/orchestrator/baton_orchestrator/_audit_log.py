"""The audit log: records buffered in memory and written to SQL in batches.

Dispatch only appends to a list; a background task writes what piled up in
one statement, so auditing every execution costs the hot path nothing but
the append. A read flushes first, so this replica's own records are visible.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from baton_core import (
    AuditEntry,
    InvalidArgument,
    Unavailable,
    decode_page_token,
    encode_page_token,
    finish_before_cancel,
    insert_ignoring_conflicts,
    page_size,
)

from ._control_tables import audit

log = logging.getLogger("baton.orchestrator.audit")

_CAPACITY = 100_000
_INTERVAL = 0.1
DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 100, 1000


@dataclass(frozen=True)
class AuditQuery:
    actor: str = ""
    action: str = ""
    entity_type: str = ""
    entity: str = ""
    outcome: str = ""
    start_time: dt.datetime | None = None
    end_time: dt.datetime | None = None
    page_size: int = 100
    page_token: str = ""


def _scope(q: AuditQuery) -> str:
    """What a page token is good for: this listing with these filters."""
    times = [t.isoformat() if t else "" for t in (q.start_time, q.end_time)]
    return "audit:" + json.dumps([q.actor, q.action, q.entity_type, q.entity, q.outcome, *times])


def _row(entry: AuditEntry) -> dict:
    return {"record_id": entry.record_id, "time": entry.time, "actor": entry.actor[:255],
            "via": entry.via[:255], "action": entry.action[:32],
            "entity_type": entry.entity_type[:32], "entity": entry.entity[:255],
            "changes": entry.changes, "outcome": entry.outcome[:32],
            "service": entry.service[:32], "roles": list(entry.roles)}


def _entry(row) -> AuditEntry:
    time = row.time if row.time.tzinfo else row.time.replace(tzinfo=dt.UTC)
    return AuditEntry(actor=row.actor, action=row.action, entity_type=row.entity_type,
                      entity=row.entity, changes=row.changes or {}, outcome=row.outcome,
                      via=row.via, roles=tuple(row.roles or ()), service=row.service,
                      record_id=row.record_id, time=time)


class AuditLog:
    """An AuditSink backed by the `ctl_audit` table."""

    def __init__(self) -> None:
        self._engine: AsyncEngine | None = None
        self._buffer: list[AuditEntry] = []
        self._task: asyncio.Task | None = None
        self._lock = asyncio.Lock()
        self._lane: Callable[[Any, list[dict]], Awaitable[None]] | None = None

    def attach(self, engine: AsyncEngine) -> None:
        self._engine = engine

    def route_sqlite_writes(self, lane: Callable[[Any, list[dict]], Awaitable[None]] | None
                            ) -> None:
        """Writes this replica's records through `lane` (the workflow writer's SQLite
        connection), so that the two never contend for SQLite's write lock; None
        goes back to the engine."""
        self._lane = lane

    def record(self, entry: AuditEntry) -> None:
        if len(self._buffer) >= _CAPACITY:
            log.warning("audit buffer full; dropping the oldest record")
            self._buffer.pop(0)
        self._buffer.append(entry)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._drain(), name="audit-log")

    async def _drain(self) -> None:
        while self._buffer:
            await asyncio.sleep(_INTERVAL)
            try:
                await self.flush()
            except Exception:  # noqa: BLE001 - keep the records and try again
                log.exception("writing %d audit records failed; retrying", len(self._buffer))
                await asyncio.sleep(1.0)

    async def flush(self) -> None:
        """Writes every buffered record."""
        if self._engine is None:
            return
        async with self._lock:
            batch, self._buffer = self._buffer, []
            try:
                await self.write(batch, dedupe=False)
            except BaseException:
                self._buffer[:0] = batch
                raise

    @finish_before_cancel
    async def write(self, entries: list[AuditEntry], dedupe: bool = True) -> int:
        """Stores `entries`, skipping record ids already stored; returns how many were new.

        This replica's own records have fresh ids: they skip the lookup (`dedupe`).
        """
        if not entries or self._engine is None:
            return 0
        rows = list({e.record_id: _row(e) for e in entries}.values())
        lane = self._lane
        if lane is not None and not dedupe:
            await lane(insert_ignoring_conflicts("sqlite", audit), rows)
            return len(rows)
        async with self._engine.begin() as conn:
            known = set() if not dedupe else set((await conn.execute(
                sa.select(audit.c.record_id).where(
                    audit.c.record_id.in_([r["record_id"] for r in rows])))).scalars())
            fresh = [r for r in rows if r["record_id"] not in known]
            if fresh:
                # Records are written once: a record id already stored is skipped.
                await conn.execute(insert_ignoring_conflicts(conn.dialect.name, audit), fresh)
        return len(fresh)

    async def query(self, q: AuditQuery) -> tuple[list[AuditEntry], str]:
        """One page of records, newest first, and the next page's token."""
        size = page_size(q.page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        scope = _scope(q)
        after = decode_page_token(q.page_token, scope, id=int).get("id")
        if q.start_time and q.end_time and q.start_time >= q.end_time:
            raise InvalidArgument("start_time must be before end_time",
                                  violations=[("start_time", "must be before end_time")])
        await self.flush()
        stmt = sa.select(audit).order_by(audit.c.id.desc()).limit(size + 1)
        for column, value in (("actor", q.actor), ("action", q.action),
                              ("entity_type", q.entity_type), ("entity", q.entity),
                              ("outcome", q.outcome)):
            if value:
                stmt = stmt.where(audit.c[column] == value)
        if q.start_time:
            stmt = stmt.where(audit.c.time >= q.start_time)
        if q.end_time:
            stmt = stmt.where(audit.c.time < q.end_time)
        if after is not None:
            stmt = stmt.where(audit.c.id < after)
        if self._engine is None:
            raise Unavailable("the audit log is not open yet")
        async with self._engine.connect() as conn:
            rows = list(await conn.execute(stmt))
        next_token = encode_page_token({"id": rows[size - 1].id}, scope) if len(rows) > size else ""
        return [_entry(r) for r in rows[:size]], next_token

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        try:
            await self.flush()
        except Exception:  # noqa: BLE001
            log.exception("lost %d audit records at stop", len(self._buffer))
