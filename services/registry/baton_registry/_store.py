"""Methods: create, replace, read, list, update and delete, each with its event."""

from __future__ import annotations

import re
from collections.abc import Callable

from sqlalchemy import exists, select

from baton_core import NotFound, finish_before_cancel, utcnow

from . import _outbox as outbox
from . import _rows as rows
from ._db import Database
from ._models import Method, WorkerLease
from ._tables import method_tags, methods


class MethodStore:
    """SQL access to methods; every change writes its outbox event in the same transaction."""

    def __init__(self, db: Database) -> None:
        self._db = db

    @finish_before_cancel
    async def register(self, method: Method, lease: WorkerLease | None) -> tuple[Method, bool]:
        """Creates or replaces `method` (keeping its endpoints) and records `lease` on it.

        A worker registering an older version than the one stored, while another
        worker serves that one live, does not roll the method back (an old worker
        restarted mid-deploy): its endpoint is recorded and the stored definition
        stays. A registration without a worker (an operator's) always replaces.
        """
        now = utcnow()
        async with self._db.write() as conn:
            current = await rows.get_method(conn, method.name) if lease is not None else None
            if lease is not None and current is not None \
                    and _older(method.version, current.version) \
                    and await rows.served_by_others(conn, method.name, lease.worker_id):
                created = False
            else:
                created = await rows.put_method(conn, method, now)
            if lease is not None:
                await rows.upsert_endpoint(conn, method.name, lease)
            stored = await outbox.record_upsert(conn, method.name, now)
        return stored, created

    async def get(self, name: str) -> Method | None:
        async with self._db.read() as conn:
            return await rows.get_method(conn, name)

    async def find(self, *, domain: str = "", tag: str = "", after: str = "",
                   limit: int | None = None) -> list[Method]:
        """Methods ordered by name, after the name `after`."""
        where = []
        if domain:
            where.append(methods.c.domain == domain)
        if tag:
            where.append(exists(select(method_tags.c.tag).where(
                method_tags.c.method_name == methods.c.name, method_tags.c.tag == tag)))
        if after:
            where.append(methods.c.name > after)
        async with self._db.read() as conn:
            return await rows.select_methods(conn, *where, limit=limit)

    @finish_before_cancel
    async def update(self, name: str, apply: Callable[[Method], Method]) -> Method:
        """Replaces the method with `apply(current)`; whatever `apply` raises aborts it.
        An update that changes nothing writes nothing.

        Raises:
            NotFound: no method is called `name`.
        """
        now = utcnow()
        async with self._db.write() as conn:
            current = await rows.get_method(conn, name)
            if current is None:
                raise NotFound(f"method {name!r} not found", reason="METHOD_NOT_FOUND",
                               metadata={"method": name})
            updated = apply(current)
            if updated == current:
                # Nothing changes: no new update_time and no change event for watchers.
                return current
            await rows.put_method(conn, updated, now)
            return await outbox.record_upsert(conn, name, now)

    @finish_before_cancel
    async def delete(self, name: str) -> None:
        """Deletes the method and its endpoints.

        Raises:
            NotFound: no method is called `name`.
        """
        async with self._db.write() as conn:
            if not await rows.delete_method(conn, name):
                raise NotFound(f"method {name!r} not found", reason="METHOD_NOT_FOUND",
                               metadata={"method": name})
            await outbox.record_delete(conn, name, utcnow())


def _version_key(version: str) -> tuple[int, ...] | None:
    """`1.2.10` → (1, 2, 10); None for a version that is not dotted numbers."""
    match = re.fullmatch(r"v?(\d+(?:\.\d+)*)", version.strip())
    return tuple(int(part) for part in match.group(1).split(".")) if match else None


def _older(version: str, than: str) -> bool:
    """Whether `version` is older than `than`; versions that do not compare are not."""
    mine, theirs = _version_key(version), _version_key(than)
    return mine is not None and theirs is not None and mine < theirs
