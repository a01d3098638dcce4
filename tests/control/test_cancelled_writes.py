"""Writes of the orchestrator's control database cancelled midway (a lease loop
stopped, a caller's deadline) leave SQLite's write lock free: the backlog of
executions for the sessions service, and the audit records other services send."""

from __future__ import annotations

import asyncio

from baton.sessions.v1 import sessions_pb2
from baton_core import AuditEntry, Identity, make_engine
from baton_orchestrator import _session_backlog
from baton_orchestrator._audit_log import AuditLog
from baton_orchestrator._control_store import ControlStore
from baton_orchestrator._session_backlog import StoredBacklog


async def test_backlog_writes_cancelled_at_any_moment_leave_the_write_lock_free(
        tmp_path, cancel_at_random, monkeypatch):
    monkeypatch.setattr(_session_backlog, "LAPSE_AFTER", 0.0)  # each claim takes the rest
    path = tmp_path / "control.db"
    db = make_engine(f"sqlite+aiosqlite:///{path}")
    await ControlStore(db).migrate()
    mine, theirs = StoredBacklog(db, "rep_a"), StoredBacklog(db, "rep_b")
    alice = Identity("alice", ("user",), "")
    for n in range(20):
        await theirs.store(sessions_pb2.Execution(execution_id=f"ex_{n}"), alice)

    async def writing() -> None:
        # (store() writes in a task of its own, which a cancelled caller leaves be)
        while True:
            await mine.claim(10, set())
            await theirs.claim(10, set())
            await mine.forget(["ex_0"])

    try:
        await cancel_at_random(path, writing, trials=150, window=0.02)
        await asyncio.wait_for(mine.forget(["nothing"]), 5)
    finally:
        await mine.close()
        await theirs.close()
        await db.dispose()


async def test_audit_writes_cancelled_at_any_moment_leave_the_write_lock_free(
        tmp_path, cancel_at_random):
    # (WriteAuditRecords: the records of the other services, looked up then inserted)
    path = tmp_path / "control.db"
    db = make_engine(f"sqlite+aiosqlite:///{path}")
    await ControlStore(db).migrate()
    log = AuditLog()
    log.attach(db)

    async def writing() -> None:
        while True:
            await log.write([AuditEntry(actor="registry", action="create",
                                        entity_type="method", entity=f"demo.m{i}")
                             for i in range(3)])

    try:
        await cancel_at_random(path, writing, trials=150, window=0.02)
        assert await asyncio.wait_for(log.write([AuditEntry("a", "b", "c")]), 5) == 1
    finally:
        await db.dispose()
