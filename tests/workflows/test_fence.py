"""The writer: the fence (a replica writes a run's changes only while it owns the run),
and what it stores on each backend."""

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


def _step_row(run_id: str, step_id: str, position: int) -> dict:
    return {"run_id": run_id, "step_id": step_id, "position": position, "method": "demo.echo",
            "status": "PENDING", "attempts": 0, "first_attempt": 1, "input": None,
            "output": None, "error": None, "start_time": None, "end_time": None}


async def test_what_the_writer_stores_reads_back_as_sqlalchemy_stores_it(db):
    # The writer runs its statements on the driver's connection (sqlite3, asyncpg)
    # with the column types' bind processors: JSON, timestamps and NULLs included.
    started = dt.datetime(2026, 12, 1, 3, 20, 5, 123456, tzinfo=dt.UTC)
    output = {"casefile_id": "cf_1", "nested": {"list": [1, 2.5, "three", None, True]},
              "text": "naïve ☃"}
    writer = Writer(db, "replica-a")
    await writer.start()
    try:
        await writer.commit(Changes("r1", fence=False, new_run=_run_row("r1", "replica-a"),
                                    new_steps=[_step_row("r1", "a", 0),
                                               _step_row("r1", "b", 1)],
                                    events=[_event("r1", 1)]))
        step = {**_step_row("r1", "a", 0), "status": "SUCCEEDED", "attempts": 1,
                "input": {"title": "x"}, "output": output, "start_time": started,
                "end_time": started + dt.timedelta(seconds=1)}
        failed = {**_step_row("r1", "b", 1), "status": "FAILED", "attempts": 2,
                  "error": {"code": "UNAVAILABLE", "message": "gone"}}
        await writer.commit(Changes("r1", steps={"a": step, "b": failed},
                                    events=[_event("r1", 2), _event("r1", 3)]))
    finally:
        await writer.stop()
    async with db.connect() as conn:
        rows = {r.step_id: r for r in (await conn.execute(sa.select(t.run_steps))).all()}
        seqs = (await conn.execute(sa.select(t.run_events.c.seq)
                                   .order_by(t.run_events.c.event_id))).scalars().all()
    assert rows["a"].output == output and rows["a"].input == {"title": "x"}
    assert rows["a"].error is None and rows["a"].status == "SUCCEEDED"
    assert rows["a"].start_time.astimezone(dt.UTC) == started
    assert rows["a"].end_time.astimezone(dt.UTC) == started + dt.timedelta(seconds=1)
    assert rows["b"].error == {"code": "UNAVAILABLE", "message": "gone"}
    assert rows["b"].output is None and rows["b"].attempts == 2
    assert seqs == [1, 2, 3]


async def test_a_transaction_that_breaks_a_key_writes_nothing_and_the_writer_goes_on(db):
    writer = Writer(db, "replica-a")
    await writer.start()
    try:
        await writer.commit(Changes("r1", fence=False, new_run=_run_row("r1", "replica-a")))
        with pytest.raises(sa.exc.IntegrityError):  # the same run inserted twice
            await writer.commit(Changes("r1", fence=False, new_run=_run_row("r1", "replica-a"),
                                        events=[_event("r1", 1)]))
        await writer.commit(Changes("r1", events=[_event("r1", 2)]))
    finally:
        await writer.stop()
    async with db.connect() as conn:
        seqs = (await conn.execute(sa.select(t.run_events.c.seq))).scalars().all()
    assert seqs == [2]


async def test_a_row_inserted_and_updated_in_one_commit_ends_as_updated(db):
    # A commit's statements run in order: the update sees the row just inserted.
    writer = Writer(db, "replica-a")
    await writer.start()
    try:
        update = {"b_run_id": "r1", "status": "SUCCEEDED", "error": None, "retry_count": 0,
                  "start_time": None, "end_time": dt.datetime.now(dt.UTC),
                  "update_time": dt.datetime.now(dt.UTC), "deadline": None}
        await writer.commit(Changes("r1", fence=False, new_run=_run_row("r1", "replica-a"),
                                    run=update, events=[_event("r1", 1)]))
        await writer.commit(Changes("r1", events=[_event("r1", 2)]))
    finally:
        await writer.stop()
    async with db.connect() as conn:
        status = (await conn.execute(sa.select(t.runs.c.status))).scalar_one()
        seqs = (await conn.execute(sa.select(t.run_events.c.seq)
                                   .order_by(t.run_events.c.event_id))).scalars().all()
    assert status == "SUCCEEDED" and seqs == [1, 2]
