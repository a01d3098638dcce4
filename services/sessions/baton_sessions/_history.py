"""Executions and events of sessions in SQL: what happened, in commit order."""

from __future__ import annotations

from dataclasses import replace

import sqlalchemy as sa

from baton_core import NotFound

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
        being the first record. Raises NotFound.
        """
        sid = execution.session_id
        bump = (
            sa.update(_S).where(_S.c.session_id == sid)
            .values(execution_count=_S.c.execution_count + 1, version=_S.c.version + 1,
                    last_activity_time=to_datetime(execution.create_time))
            .returning(*_S.c))
        insert = self.db.insert_ignoring_conflicts(_X).values(
            session_id=sid, execution_id=execution.execution_id,
            operation=execution.operation, status=execution.status,
            duration_ns=execution.duration_ns, error=execution.error,
            run_id=execution.run_id, step_id=execution.step_id, actor=execution.actor,
            create_time=to_datetime(execution.create_time), result=execution.result,
        ).returning(_X.c.seq)
        try:
            async with self.db.write() as conn:
                row = (await conn.execute(bump)).first()
                if row is None:
                    raise NotFound(f"session {sid!r} not found", metadata={"session_id": sid})
                seq = (await conn.execute(insert)).scalar()
                if seq is None:
                    raise _Duplicate
                await append_event(conn, sid, row.version, r.EXECUTION_TRACKED_EVENT, {
                    "execution_id": execution.execution_id,
                    "operation": execution.operation,
                    "status": execution.status}, execution.create_time)
        except _Duplicate:
            return None, await self.get_execution(sid, execution.execution_id)
        return session_from_row(row), replace(execution, seq=seq)

    async def get_execution(self, session_id: str, execution_id: str) -> ExecutionRecord:
        query = sa.select(_X).where(_X.c.session_id == session_id,
                                    _X.c.execution_id == execution_id)
        async with self.db.read() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            raise NotFound(f"execution {execution_id!r} not found")
        return execution_from_row(row)

    async def executions(self, session_id: str, limit: int,
                         before_seq: int = 0) -> list[ExecutionRecord]:
        """Newest first; raises NotFound for an unknown session."""
        query = (sa.select(_X).where(_X.c.session_id == session_id)
                 .order_by(_X.c.seq.desc()).limit(limit))
        if before_seq:
            query = query.where(_X.c.seq < before_seq)
        async with self.db.read() as conn:
            rows = (await conn.execute(query)).all()
            if not rows:
                await self._require_session(conn, session_id)
        return [execution_from_row(row) for row in rows]

    async def events(self, session_id: str, after: int, limit: int) -> list[EventRecord]:
        """Events with sequence > `after`, oldest first."""
        query = (sa.select(_E).where(_E.c.session_id == session_id, _E.c.sequence > after)
                 .order_by(_E.c.sequence).limit(limit))
        async with self.db.read() as conn:
            rows = (await conn.execute(query)).all()
        return [event_from_row(row) for row in rows]

    @staticmethod
    async def _require_session(conn, session_id: str) -> None:
        found = (await conn.execute(
            sa.select(_S.c.session_id).where(_S.c.session_id == session_id))).first()
        if found is None:
            raise NotFound(f"session {session_id!r} not found",
                           metadata={"session_id": session_id})
