"""SQL for methods, their tags and their endpoints, shared by the stores.

Every function runs inside a transaction the caller opened.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from sqlalchemy import ColumnElement, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ._models import Endpoint, EndpointState, Method, WorkerLease
from ._tables import endpoints, method_tags, methods


def aware(value: dt.datetime) -> dt.datetime:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


async def select_methods(conn: AsyncConnection, *where: ColumnElement[bool],
                         limit: int | None = None) -> list[Method]:
    """Methods matching `where`, ordered by name, with tags and endpoints."""
    query = select(methods).where(*where).order_by(methods.c.name)
    if limit is not None:
        query = query.limit(limit)
    rows = (await conn.execute(query)).mappings().all()
    if not rows:
        return []
    # Children are fetched with the same query as a subquery, so the number of
    # bound parameters does not grow with the page.
    names = select(query.subquery().c.name)
    tags: dict[str, list[str]] = defaultdict(list)
    for name, tag in await conn.execute(
            select(method_tags.c.method_name, method_tags.c.tag)
            .where(method_tags.c.method_name.in_(names))
            .order_by(method_tags.c.method_name, method_tags.c.position)):
        tags[name].append(tag)
    eps: dict[str, list[Endpoint]] = defaultdict(list)
    for row in (await conn.execute(
            select(endpoints).where(endpoints.c.method_name.in_(names))
            .order_by(endpoints.c.method_name, endpoints.c.worker_id))).mappings():
        eps[row["method_name"]].append(Endpoint(
            worker_id=row["worker_id"], address=row["address"],
            state=EndpointState(row["state"]),
            lease_expire_time=aware(row["lease_expire_time"])))
    return [_method(row, tags[row["name"]], eps[row["name"]]) for row in rows]


async def get_method(conn: AsyncConnection, name: str) -> Method | None:
    found = await select_methods(conn, methods.c.name == name)
    return found[0] if found else None


async def method_exists(conn: AsyncConnection, name: str) -> bool:
    row = await conn.execute(select(methods.c.name).where(methods.c.name == name))
    return row.first() is not None


async def put_method(conn: AsyncConnection, method: Method, now: dt.datetime) -> bool:
    """Inserts or replaces the method's row and tags; True when it was new."""
    values = _values(method)
    created = not await method_exists(conn, method.name)
    if created:
        await conn.execute(insert(methods).values(
            name=method.name, create_time=now, update_time=now, **values))
    else:
        await conn.execute(update(methods).where(methods.c.name == method.name)
                           .values(update_time=now, **values))
        await conn.execute(delete(method_tags).where(method_tags.c.method_name == method.name))
    if method.tags:
        await conn.execute(insert(method_tags), [
            {"method_name": method.name, "tag": tag, "position": i}
            for i, tag in enumerate(method.tags)])
    return created


async def delete_method(conn: AsyncConnection, name: str) -> bool:
    await conn.execute(delete(endpoints).where(endpoints.c.method_name == name))
    await conn.execute(delete(method_tags).where(method_tags.c.method_name == name))
    result = await conn.execute(delete(methods).where(methods.c.name == name))
    return result.rowcount > 0


async def served_by_others(conn: AsyncConnection, name: str, worker_id: str) -> bool:
    """Whether a worker other than `worker_id` serves method `name` under a live lease."""
    row = await conn.execute(select(endpoints.c.worker_id).where(
        (endpoints.c.method_name == name) & (endpoints.c.worker_id != worker_id)
        & (endpoints.c.state == EndpointState.AVAILABLE.value)).limit(1))
    return row.first() is not None


async def endpoint_exists(conn: AsyncConnection, name: str, worker_id: str) -> bool:
    row = await conn.execute(select(endpoints.c.worker_id).where(
        (endpoints.c.method_name == name) & (endpoints.c.worker_id == worker_id)))
    return row.first() is not None


async def upsert_endpoint(conn: AsyncConnection, name: str, lease: WorkerLease) -> bool:
    """Records or renews `lease` on method `name`; True when watchers should hear of it."""
    key = (endpoints.c.method_name == name) & (endpoints.c.worker_id == lease.worker_id)
    row = (await conn.execute(
        select(endpoints.c.address, endpoints.c.state).where(key))).first()
    values = {"address": lease.address, "state": EndpointState.AVAILABLE.value,
              "lease_expire_time": lease.expire_time}
    if row is None:
        await conn.execute(insert(endpoints).values(
            method_name=name, worker_id=lease.worker_id, **values))
        return True
    await conn.execute(update(endpoints).where(key).values(**values))
    return (row.address, row.state) != (lease.address, EndpointState.AVAILABLE.value)


def _values(method: Method) -> dict[str, Any]:
    return {
        "version": method.version, "description": method.description,
        "domain": method.domain, "input_schema": method.input_schema,
        "output_schema": method.output_schema, "default_timeout": method.default_timeout,
        "retry_policy": method.retry_policy, "idempotent": method.idempotent,
    }


def _method(row, tags: list[str], eps: list[Endpoint]) -> Method:
    return Method(
        name=row["name"], version=row["version"], description=row["description"],
        domain=row["domain"], tags=tuple(tags), input_schema=row["input_schema"],
        output_schema=row["output_schema"], default_timeout=row["default_timeout"],
        retry_policy=row["retry_policy"], idempotent=row["idempotent"],
        endpoints=tuple(eps), create_time=aware(row["create_time"]),
        update_time=aware(row["update_time"]))
