"""Sessions in SQL, the system of record: every change commits with its event.

Each write is one transaction function; those that read before they write
re-check what they read in the write's WHERE clause (compare-and-set), so
they are correct under PostgreSQL's READ COMMITTED as under SQLite.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from baton_core import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    NotFound,
    insert_ignoring_conflicts,
    new_etag,
    new_id,
)

from . import _records as r
from . import _tables as t
from ._context import apply_mask, check_size
from ._records import SessionRecord, now_us
from ._sql import (
    Database,
    append_event,
    session_from_row,
    to_datetime,
)

_S = t.sessions
_RETRIES = 8
_BY_ID = sa.select(_S).where(_S.c.session_id == sa.bindparam("b_id"))
_BY_ID_LOCKED = _BY_ID.with_for_update()
_ACTIVE_PAIR = sa.select(_S).where(_S.c.user_id == sa.bindparam("b_user"),
                                   _S.c.casefile_id == sa.bindparam("b_casefile"),
                                   _S.c.status == r.ACTIVE)
_BY_REQUEST = sa.select(_S).where(_S.c.request_id == sa.bindparam("b_request"))
_CREATED = sa.select(t.events.c.data).where(t.events.c.session_id == sa.bindparam("b_id"),
                                            t.events.c.type == r.CREATED_EVENT)
_CLOSE = (sa.update(_S)
          .where(_S.c.session_id == sa.bindparam("b_id"), _S.c.status == r.ACTIVE)
          .values(status=r.CLOSED, end_time=sa.bindparam("b_now"),
                  last_activity_time=sa.bindparam("b_now"), version=_S.c.version + 1)
          .returning(*_S.c))
_LINK = (sa.update(_S)
         .where(_S.c.session_id == sa.bindparam("b_id"), _S.c.status == r.ACTIVE,
                _S.c.casefile_id == sa.bindparam("b_old"))
         .values(casefile_id=sa.bindparam("b_new"), last_activity_time=sa.bindparam("b_now"),
                 version=_S.c.version + 1)
         .returning(*_S.c))
_SET_CONTEXT = (sa.update(_S)
                .where(_S.c.session_id == sa.bindparam("b_id"), _S.c.status == r.ACTIVE,
                       _S.c.etag == sa.bindparam("b_old"))
                .values(context=sa.bindparam("b_context"), etag=sa.bindparam("b_new"),
                        last_activity_time=sa.bindparam("b_now"), version=_S.c.version + 1)
                .returning(*_S.c))
# Moves last_activity_time forward, never back; also used by the expiry sweep.
MOVE_ACTIVITY = (sa.update(_S)
                 .where(_S.c.session_id == sa.bindparam("b_id"), _S.c.status == r.ACTIVE,
                        _S.c.last_activity_time < sa.bindparam("b_time"))
                 .values(last_activity_time=sa.bindparam("b_time")))


def _one(conn: Connection, statement: Any, **params: Any) -> SessionRecord | None:
    row = conn.execute(statement, params).first()
    return session_from_row(row) if row is not None else None


def _get(conn: Connection, session_id: str, *, lock: bool = False) -> SessionRecord:
    """The session's row; `lock` holds it until the transaction ends (PostgreSQL's
    FOR UPDATE; SQLite's writes hold the whole database from their first read)."""
    record = _one(conn, _BY_ID_LOCKED if lock else _BY_ID, b_id=session_id)
    if record is None:
        raise NotFound(f"session {session_id!r} not found", reason="SESSION_NOT_FOUND",
                       metadata={"session_id": session_id})
    return record


def _insert(conn: Connection, values: dict[str, Any], now: int) -> SessionRecord | None:
    statement = insert_ignoring_conflicts(conn.dialect.name, _S).returning(*_S.c)
    row = conn.execute(statement, values).first()
    if row is None:
        return None
    append_event(conn, row.session_id, 1, r.CREATED_EVENT,
                 {"user_id": row.user_id, "casefile_id": row.casefile_id}, now)
    return session_from_row(row)


def _changed(conn: Connection, statement: Any, kind: str, data: dict[str, Any], now: int,
             params: dict[str, Any]) -> SessionRecord | None:
    """Runs a versioned UPDATE ... RETURNING and logs its event if it changed a row."""
    record = _one(conn, statement, b_now=to_datetime(now), **params)
    if record is not None:
        append_event(conn, record.session_id, record.version, kind, data, now)
    return record


class SessionStore:
    """Creates, reads and changes session rows."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, session_id: str) -> SessionRecord:
        """Raises NotFound."""
        return await self.db.read(_get, session_id)

    async def find_active(self, user_id: str, casefile_id: str) -> SessionRecord | None:
        return await self.db.read(lambda conn: _one(conn, _ACTIVE_PAIR, b_user=user_id,
                                                    b_casefile=casefile_id))

    async def find_by_request(self, request_id: str) -> SessionRecord | None:
        """The session a CreateSession with `request_id` made, as that request asked
        for it: its casefile the one it was created on (a link may have moved it)."""
        def find(conn: Connection) -> SessionRecord | None:
            record = _one(conn, _BY_REQUEST, b_request=request_id)
            if record is None:
                return None
            created = conn.execute(_CREATED, {"b_id": record.session_id}).scalar()
            casefile = (created or {}).get("casefile_id", record.casefile_id)
            return replace(record, casefile_id=casefile)

        return await self.db.read(find)

    async def insert(self, user_id: str, casefile_id: str, labels: dict[str, str],
                     request_id: str = "") -> SessionRecord | None:
        """Inserts an active session; None when (user, casefile) or request_id is taken."""
        now = now_us()
        values = dict(
            session_id=new_id(), user_id=user_id, casefile_id=casefile_id, status=r.ACTIVE,
            labels=labels, request_id=request_id or None, context={}, etag=new_etag(),
            execution_count=0, version=1, create_time=to_datetime(now),
            last_activity_time=to_datetime(now), end_time=None)
        return await self.db.write(_insert, values, now)

    async def create(self, user_id: str, casefile_id: str, labels: dict[str, str],
                     request_id: str) -> tuple[SessionRecord, bool]:
        """Returns (session, created); AlreadyExists when the pair has an active session,
        FailedPrecondition when request_id was used for another request."""
        for _ in range(_RETRIES):
            if request_id and (earlier := await self.find_by_request(request_id)):
                _same_request(earlier, user_id, casefile_id, labels, request_id)
                return await self.get(earlier.session_id), False
            created = await self.insert(user_id, casefile_id, labels, request_id)
            if created is not None:
                return created, True
            if request_id and (earlier := await self.find_by_request(request_id)):
                _same_request(earlier, user_id, casefile_id, labels, request_id)
                return await self.get(earlier.session_id), False
            active = await self.find_active(user_id, casefile_id)
            if active is not None:
                on = f"on casefile {casefile_id!r}" if casefile_id else "without a casefile"
                raise AlreadyExists(
                    f"user {user_id!r} already has an active session {on}: "
                    f"{active.session_id}", metadata={"session_id": active.session_id})
        raise Aborted("too much contention creating the session; retry")

    async def close(self, session_id: str) -> tuple[SessionRecord, bool]:
        """Returns (session, changed); closing a closed session changes nothing."""
        def close(conn: Connection) -> tuple[SessionRecord, bool]:
            record = _changed(conn, _CLOSE, r.CLOSED_EVENT, {}, now_us(), {"b_id": session_id})
            return (record, True) if record is not None else (_get(conn, session_id), False)

        return await self.db.write(close)

    async def link(self, session_id: str, casefile_id: str) -> tuple[SessionRecord, str | None]:
        """Returns (session, previous casefile), previous being None when already linked."""
        def link(conn: Connection) -> tuple[SessionRecord, str | None]:
            # Read and write in one transaction, the row locked: concurrent links queue
            # up instead of failing each other's compare-and-set.
            current = _active(_get(conn, session_id, lock=True))
            if current.casefile_id == casefile_id:
                return current, None
            data = {"casefile_id": casefile_id, "previous_casefile_id": current.casefile_id}
            try:
                with conn.begin_nested():
                    record = _changed(
                        conn, _LINK, r.LINKED_EVENT, data, now_us(),
                        {"b_id": session_id, "b_old": current.casefile_id, "b_new": casefile_id})
            except sa.exc.IntegrityError:
                raise FailedPrecondition(
                    f"user {current.user_id!r} already has another active session on "
                    f"casefile {casefile_id!r}", reason="CASEFILE_HAS_ACTIVE_SESSION") from None
            if record is None:  # cannot happen with the row locked; never report a change
                raise Aborted("the session changed meanwhile; retry")
            return record, current.casefile_id

        return await self.db.write(link)

    async def update_context(self, session_id: str, values: dict[str, Any],
                             paths: list[str], etag: str, max_bytes: int) -> SessionRecord:
        """Sets the masked keys (all keys when `paths` is empty); Aborted on a stale etag."""
        def update(conn: Connection) -> SessionRecord:
            current = _active(_get(conn, session_id, lock=True))
            if etag and etag != current.etag:
                raise Aborted("the context changed since it was read (stale etag)",
                              reason="ETAG_MISMATCH", metadata={"etag": current.etag})
            document = apply_mask(current.context, values, paths)
            check_size(document, max_bytes)
            new = new_etag()
            data = {"etag": new, "keys": sorted(paths or document)}
            record = _changed(conn, _SET_CONTEXT, r.CONTEXT_CHANGED_EVENT, data, now_us(),
                              {"b_id": session_id, "b_old": current.etag, "b_context": document,
                               "b_new": new})
            if record is None:  # cannot happen with the row locked; never report a change
                raise Aborted("the session changed meanwhile; retry")
            return record

        return await self.db.write(update)

    async def record_activity(self, session_id: str, activity_time: int) -> SessionRecord:
        """Moves last_activity_time forward to a read seen only by Redis (no event)."""
        def record(conn: Connection) -> SessionRecord:
            conn.execute(MOVE_ACTIVITY, {"b_id": session_id, "b_time": to_datetime(activity_time)})
            return _get(conn, session_id)

        return await self.db.write(record)

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
        return await self.db.read(
            lambda conn: [session_from_row(row) for row in conn.execute(query)])


def _active(session: SessionRecord) -> SessionRecord:
    """`session`, if it is active: a closed or expired session takes no more changes."""
    if session.status != r.ACTIVE:
        raise FailedPrecondition(f"session {session.session_id!r} is {session.status}",
                                 reason="SESSION_NOT_ACTIVE",
                                 metadata={"session_id": session.session_id,
                                           "status": session.status})
    return session


def _same_request(earlier: SessionRecord, user_id: str, casefile_id: str,
                  labels: dict[str, str], request_id: str) -> SessionRecord:
    """The session a repeated CreateSession made; refused when the request differs
    (another user's, or other values), so a reused id never hands over a session."""
    if (earlier.user_id, earlier.casefile_id, earlier.labels) != (user_id, casefile_id, labels):
        raise FailedPrecondition(
            f"request_id {request_id!r} was already used for another CreateSession "
            "request; use a new request_id", reason="REQUEST_ID_REUSED",
            metadata={"request_id": request_id})
    return earlier
