"""The `registry_events` outbox: written with every change, tailed by watches."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from ._db import mark_events_written
from ._models import Change, ChangeType, Method
from ._rows import get_method
from ._tables import events


async def record_upsert(conn: AsyncConnection, name: str, now: dt.datetime) -> Method:
    """Appends UPSERTED with the method as this transaction leaves it; returns it."""
    method = await get_method(conn, name)
    if method is None:
        raise LookupError(name)
    await _append(conn, ChangeType.UPSERTED, name, method.to_json(), now)
    return method


async def record_delete(conn: AsyncConnection, name: str, now: dt.datetime) -> None:
    await _append(conn, ChangeType.DELETED, name, None, now)


async def _append(conn: AsyncConnection, type_: ChangeType, name: str,
                  payload: dict | None, now: dt.datetime) -> None:
    await conn.execute(insert(events).values(
        type=type_.value, method_name=name, payload=payload, create_time=now))
    mark_events_written(conn)


async def last_id(conn: AsyncConnection) -> int:
    return (await conn.execute(select(func.max(events.c.id)))).scalar() or 0


async def read_after(conn: AsyncConnection, after: int, limit: int) -> list[tuple[int, Change]]:
    """Events with id > `after`, oldest first."""
    rows = await conn.execute(
        select(events.c.id, events.c.type, events.c.method_name, events.c.payload)
        .where(events.c.id > after).order_by(events.c.id).limit(limit))
    changes = []
    for id_, type_, name, payload in rows:
        method = Method.from_json(payload) if payload else Method(name=name)
        changes.append((id_, Change(ChangeType(type_), method)))
    return changes


async def prune(conn: AsyncConnection, before: dt.datetime) -> int:
    """Drops events older than `before`, always keeping the newest one."""
    newest = select(func.max(events.c.id)).scalar_subquery()
    result = await conn.execute(
        delete(events).where(events.c.create_time < before, events.c.id < newest))
    return result.rowcount
