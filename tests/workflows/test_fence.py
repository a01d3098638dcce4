"""The writer's fence: a replica writes a run's changes only while it owns the run."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from baton_core import make_engine, migrate
from baton_orchestrator.workflows import _constants as k
from baton_orchestrator.workflows import _tables as t
from baton_orchestrator.workflows._engine import MIGRATIONS
from baton_orchestrator.workflows._records import Changes
from baton_orchestrator.workflows._writer import LeaseLost, Writer


def _run_row(run_id: str, owner: str) -> dict:
    now = dt.datetime.now(dt.UTC)
    return {"run_id": run_id, "workflow_version": 1, "workflow_name": "fenced",
            "definition": {"name": "fenced", "steps": []}, "input": {}, "session_id": "",
            "actor": "test", "status": "RUNNING", "retry_count": 0, "create_time": now,
            "update_time": now, "cancel_requested": False, "owner": owner,
            "lease_expires_at": 0.0}


def _event(run_id: str, seq: int) -> dict:
    return {"run_id": run_id, "seq": seq, "step_id": "", "run_status": "RUNNING",
            "step_status": None, "attempt": 0, "message": f"event {seq}", "error": None,
            "replica": "replica-a", "create_time": dt.datetime.now(dt.UTC)}


@pytest.fixture
async def db(databases):
    engine = make_engine(await databases.new_url_async("fence"))
    await migrate(engine, MIGRATIONS, k.VERSION_TABLE)
    yield engine
    await engine.dispose()


async def test_a_replica_that_lost_a_run_writes_none_of_its_changes(db):
    async with db.begin() as conn:
        await conn.execute(sa.insert(t.runs), [_run_row("r1", "replica-a"),
                                               _run_row("r2", "replica-a")])
    writer = Writer(db, "replica-a")
    await writer.start()
    try:
        await writer.commit(Changes("r1", events=[_event("r1", 1)]))
        async with db.begin() as conn:  # another replica takes r1 over
            await conn.execute(sa.update(t.runs).where(t.runs.c.run_id == "r1")
                               .values(owner="replica-b"))
        with pytest.raises(LeaseLost):
            await writer.commit(Changes("r1", events=[_event("r1", 2)]))
        await writer.commit(Changes("r2", events=[_event("r2", 1)]))  # still its own
    finally:
        await writer.stop()
    async with db.connect() as conn:
        written = (await conn.execute(sa.select(t.run_events.c.run_id, t.run_events.c.seq)
                                      .order_by(t.run_events.c.event_id))).all()
        owners = dict((await conn.execute(sa.select(t.runs.c.run_id, t.runs.c.owner))).all())
    assert [tuple(row) for row in written] == [("r1", 1), ("r2", 1)]
    assert owners == {"r1": "replica-b", "r2": "replica-a"}
