"""Sessions in SQL, the system of record: every change commits with its event."""

from __future__ import annotations

import os
from typing import Any

import sqlalchemy as sa

from baton_core import Aborted, AlreadyExists, FailedPrecondition, NotFound, new_id

from . import _records as r
from . import _tables as t
from ._context import apply_mask, check_size
from ._records import SessionRecord, now_us
from ._sql import Database, append_event, session_from_row, to_datetime

_S = t.sessions
_RETRIES = 8


def new_etag() -> str:
    return os.urandom(8).hex()


class SessionStore:
    """Creates, reads and changes session rows."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, session_id: str) -> SessionRecord:
        """Raises NotFound."""
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(_S).where(_S.c.session_id == session_id))).first()
        if row is None:
            raise NotFound(f"session {session_id!r} not found",
                           metadata={"session_id": session_id})
        return session_from_row(row)

    async def find_active(self, user_id: str, casefile_id: str) -> SessionRecord | None:
        query = sa.select(_S).where(_S.c.user_id == user_id, _S.c.casefile_id == casefile_id,
                                    _S.c.status == r.ACTIVE)
        async with self.db.read() as conn:
            row = (await conn.execute(query)).first()
        return session_from_row(row) if row is not None else None

    async def find_by_request(self, request_id: str) -> SessionRecord | None:
        async with self.db.read() as conn:
            row = (await conn.execute(
                sa.select(_S).where(_S.c.request_id == request_id))).first()
        return session_from_row(row) if row is not None else None

    async def insert(self, user_id: str, casefile_id: str, labels: dict[str, str],
                     request_id: str = "") -> SessionRecord | None:
        """Inserts an active session; None when (user, casefile) or request_id is taken."""
        now = now_us()
        values = dict(
            session_id=new_id(), user_id=user_id, casefile_id=casefile_id, status=r.ACTIVE,
            labels=labels, request_id=request_id or None, context={}, etag=new_etag(),
            execution_count=0, version=1, create_time=to_datetime(now),
            last_activity_time=to_datetime(now), end_time=None)
        statement = self.db.insert_ignoring_conflicts(_S).values(**values).returning(*_S.c)
        async with self.db.write() as conn:
            row = (await conn.execute(statement)).first()
            if row is None:
                return None
            await append_event(conn, row.session_id, 1, r.CREATED_EVENT,
                               {"user_id": user_id, "casefile_id": casefile_id}, now)
        return session_from_row(row)

    async def create(self, user_id: str, casefile_id: str, labels: dict[str, str],
                     request_id: str) -> tuple[SessionRecord, bool]:
        """Returns (session, created); AlreadyExists when the pair has an active session."""
        for _ in range(_RETRIES):
            if request_id and (earlier := await self.find_by_request(request_id)):
                return earlier, False
            created = await self.insert(user_id, casefile_id, labels, request_id)
            if created is not None:
                return created, True
            if request_id and (earlier := await self.find_by_request(request_id)):
                return earlier, False
            active = await self.find_active(user_id, casefile_id)
            if active is not None:
                raise AlreadyExists(
                    f"user {user_id!r} already has an active session on casefile "
                    f"{casefile_id!r}", metadata={"session_id": active.session_id})
        raise Aborted("too much contention creating the session; retry")

    async def close(self, session_id: str) -> tuple[SessionRecord, bool]:
        """Returns (session, changed); closing a closed session changes nothing."""
        now = now_us()
        statement = (
            sa.update(_S)
            .where(_S.c.session_id == session_id, _S.c.status == r.ACTIVE)
            .values(status=r.CLOSED, end_time=to_datetime(now),
                    last_activity_time=to_datetime(now), version=_S.c.version + 1)
            .returning(*_S.c))
        async with self.db.write() as conn:
            row = (await conn.execute(statement)).first()
            if row is not None:
                await append_event(conn, session_id, row.version, r.CLOSED_EVENT, {}, now)
        if row is None:
            return await self.get(session_id), False
        return session_from_row(row), True

    async def link(self, session_id: str, casefile_id: str) -> tuple[SessionRecord, str | None]:
        """Returns (session, previous casefile), previous being None when already linked."""
        for _ in range(_RETRIES):
            current = await self.get(session_id)
            if current.status != r.ACTIVE:
                raise FailedPrecondition(f"session {session_id!r} is {current.status}",
                                         reason="SESSION_NOT_ACTIVE")
            if current.casefile_id == casefile_id:
                return current, None
            now = now_us()
            statement = (
                sa.update(_S)
                .where(_S.c.session_id == session_id, _S.c.status == r.ACTIVE,
                       _S.c.casefile_id == current.casefile_id)
                .values(casefile_id=casefile_id, last_activity_time=to_datetime(now),
                        version=_S.c.version + 1)
                .returning(*_S.c))
            try:
                async with self.db.write() as conn:
                    row = (await conn.execute(statement)).first()
                    if row is not None:
                        await append_event(conn, session_id, row.version, r.LINKED_EVENT, {
                            "casefile_id": casefile_id,
                            "previous_casefile_id": current.casefile_id}, now)
            except sa.exc.IntegrityError:
                raise FailedPrecondition(
                    f"user {current.user_id!r} already has another active session on "
                    f"casefile {casefile_id!r}", reason="CASEFILE_HAS_ACTIVE_SESSION") from None
            if row is not None:
                return session_from_row(row), current.casefile_id
        raise Aborted("too much contention linking the session; retry")

    async def update_context(self, session_id: str, values: dict[str, Any],
                             paths: list[str], etag: str, max_bytes: int) -> SessionRecord:
        """Sets the masked keys (all keys when `paths` is empty); Aborted on a stale etag."""
        for _ in range(_RETRIES):
            current = await self.get(session_id)
            if etag and etag != current.etag:
                raise Aborted("the context changed since it was read (stale etag)",
                              reason="ETAG_MISMATCH", metadata={"etag": current.etag})
            document = apply_mask(current.context, values, paths)
            check_size(document, max_bytes)
            new = new_etag()
            now = now_us()
            statement = (
                sa.update(_S)
                .where(_S.c.session_id == session_id, _S.c.etag == current.etag)
                .values(context=document, etag=new, last_activity_time=to_datetime(now),
                        version=_S.c.version + 1)
                .returning(*_S.c))
            async with self.db.write() as conn:
                row = (await conn.execute(statement)).first()
                if row is not None:
                    await append_event(conn, session_id, row.version, r.CONTEXT_CHANGED_EVENT,
                                       {"etag": new, "keys": sorted(paths or document)}, now)
            if row is not None:
                return session_from_row(row)
            if etag:
                raise Aborted("the context changed since it was read (stale etag)",
                              reason="ETAG_MISMATCH")
        raise Aborted("too much contention updating the context; retry")

    async def record_activity(self, session_id: str, activity_time: int) -> SessionRecord:
        """Moves last_activity_time forward to a read seen only by Redis (no event)."""
        statement = (
            sa.update(_S)
            .where(_S.c.session_id == session_id, _S.c.status == r.ACTIVE,
                   _S.c.last_activity_time < to_datetime(activity_time))
            .values(last_activity_time=to_datetime(activity_time))
            .returning(*_S.c))
        async with self.db.write() as conn:
            row = (await conn.execute(statement)).first()
        return session_from_row(row) if row is not None else await self.get(session_id)

    async def list(self, user_id: str, casefile_id: str, status: str, limit: int,
                   before_id: str) -> list[SessionRecord]:
        """Newest first (ids sort by creation time)."""
        query = sa.select(_S).order_by(_S.c.session_id.desc()).limit(limit)
        if user_id:
            query = query.where(_S.c.user_id == user_id)
        if casefile_id:
            query = query.where(_S.c.casefile_id == casefile_id)
        if status:
            query = query.where(_S.c.status == status)
        if before_id:
            query = query.where(_S.c.session_id < before_id)
        async with self.db.read() as conn:
            rows = (await conn.execute(query)).all()
        return [session_from_row(row) for row in rows]
