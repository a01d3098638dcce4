"""Executions and events of sessions in SQL: what happened, in commit order."""

from __future__ import annotations

from dataclasses import replace

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from baton_core import FailedPrecondition, NotFound, insert_ignoring_conflicts

from . import _records as r
from . import _tables as t
from ._records import EventRecord, ExecutionRecord, SessionRecord
from ._sql import (
    Database,
    append_event,
    event_from_row,
    execution_from_row,
    session_from_row,
    to_datetime,
)

_S, _X, _E = t.sessions, t.executions, t.events
# Only an active session records executions: a closed or expired one is final.
_BUMP = (sa.update(_S).where(_S.c.session_id == sa.bindparam("b_id"), _S.c.status == r.ACTIVE)
         .values(execution_count=_S.c.execution_count + 1, version=_S.c.version + 1,
                 last_activity_time=sa.bindparam("b_now"))
         .returning(*_S.c))
_EXECUTION = sa.select(_X).where(_X.c.session_id == sa.bindparam("b_id"),
                                 _X.c.execution_id == sa.bindparam("b_execution"))
_SESSION_EXISTS = sa.select(_S.c.session_id).where(_S.c.session_id == sa.bindparam("b_id"))
_SESSION_STATUS = sa.select(_S.c.status).where(_S.c.session_id == sa.bindparam("b_id"))
_EVENTS = (sa.select(_E).where(_E.c.session_id == sa.bindparam("b_id"),
                               _E.c.sequence > sa.bindparam("b_after"))
           .order_by(_E.c.sequence).limit(sa.bindparam("b_limit")))


def _not_found(session_id: str) -> NotFound:
    return NotFound(f"session {session_id!r} not found", reason="SESSION_NOT_FOUND",
                    metadata={"session_id": session_id})


def _track(conn: Connection, execution: ExecutionRecord
           ) -> tuple[SessionRecord | None, ExecutionRecord]:
    sid = execution.session_id
    # The session row first: it is the lock that orders this session's writers.
    row = conn.execute(_BUMP, {"b_id": sid, "b_now": to_datetime(execution.create_time)}).first()
    if row is None:
        status = conn.execute(_SESSION_STATUS, {"b_id": sid}).scalar()
        if status is None:
            raise _not_found(sid)
        if conn.execute(_EXECUTION, {"b_id": sid, "b_execution": execution.execution_id}
                        ).first() is not None:
            raise _Duplicate  # a repeat of one recorded while the session was active
        raise FailedPrecondition(f"session {sid!r} is {status}: it records no more executions",
                                 reason="SESSION_NOT_ACTIVE",
                                 metadata={"session_id": sid, "status": status})
    seq = conn.execute(insert_ignoring_conflicts(conn.dialect.name, _X).returning(_X.c.seq), {
        "session_id": sid, "execution_id": execution.execution_id,
        "operation": execution.operation, "status": execution.status,
        "duration_ns": execution.duration_ns, "error": execution.error,
        "run_id": execution.run_id, "step_id": execution.step_id, "actor": execution.actor,
        "create_time": to_datetime(execution.create_time), "result": execution.result,
    }).scalar()
    if seq is None:  # the execution_id is already recorded: roll the bump back
        raise _Duplicate
    append_event(conn, sid, row.version, r.EXECUTION_TRACKED_EVENT, {
        "execution_id": execution.execution_id, "operation": execution.operation,
        "status": execution.status}, execution.create_time)
    return session_from_row(row), replace(execution, seq=seq)


class _Duplicate(Exception):
    """Rolls back a TrackExecution whose execution_id is already recorded."""


class HistoryStore:
    """Tracks executions and reads the execution history and the event log."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def track(self, execution: ExecutionRecord
                    ) -> tuple[SessionRecord | None, ExecutionRecord]:
        """Records an execution in one transaction with the session's counter and event.

        Returns (updated session, stored execution); the session is None when
        the execution_id was already recorded, the stored execution then
        being the first record. Raises NotFound, and FailedPrecondition
        (SESSION_NOT_ACTIVE) for a session that is closed or expired.
        """
        try:
            return await self.db.write(_track, execution)
        except _Duplicate:
            pass

        def first(conn: Connection) -> ExecutionRecord:
            row = conn.execute(_EXECUTION, {"b_id": execution.session_id,
                                            "b_execution": execution.execution_id}).one()
            return execution_from_row(row)

        return None, await self.db.read(first)

    async def executions(self, session_id: str, limit: int,
                         before_seq: int = 0) -> list[ExecutionRecord]:
        """Newest first; raises NotFound for an unknown session."""
        query = (sa.select(_X).where(_X.c.session_id == session_id)
                 .order_by(_X.c.seq.desc()).limit(limit))
        if before_seq:
            query = query.where(_X.c.seq < before_seq)

        def read(conn: Connection) -> list[ExecutionRecord]:
            rows = conn.execute(query).all()
            if not rows and conn.execute(_SESSION_EXISTS, {"b_id": session_id}).first() is None:
                raise _not_found(session_id)
            return [execution_from_row(row) for row in rows]

        return await self.db.read(read)

    async def events(self, session_id: str, after: int, limit: int) -> list[EventRecord]:
        """Events with sequence > `after`, oldest first."""
        return await self.db.read(lambda conn: [
            event_from_row(row) for row in conn.execute(
                _EVENTS, {"b_id": session_id, "b_after": after, "b_limit": limit})])
