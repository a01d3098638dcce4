"""The executions waiting for the sessions service are kept in SQL, each held by
the replica that stored it: a replica takes over only what a stopped one left,
and one restarted under its name takes its own back at once."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
import sqlalchemy as sa
from sqlalchemy import event

from baton.sessions.v1 import sessions_pb2
from baton_core import Identity, free_port, make_engine
from baton_orchestrator import _session_backlog
from baton_orchestrator._control_store import ControlStore
from baton_orchestrator._control_tables import session_backlog
from baton_orchestrator._sessions import SessionsGateway

pytestmark = pytest.mark.timeout(60)
ALICE = Identity("alice", ("user",), "")


def _execution(n: int) -> sessions_pb2.Execution:
    return sessions_pb2.Execution(execution_id=f"ex_backlog_{n}_{time.time_ns()}",
                                  session_id="ses_x", operation="demo.echo")


async def _wait(predicate, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return predicate()


@pytest.fixture
async def gateways(database_url, monkeypatch):
    """Makes SessionsGateways on one database whose sessions service is unreachable
    (every TrackExecution is UNAVAILABLE); closes them after the test."""
    monkeypatch.setattr(_session_backlog, "RENEW_EVERY", 0.1)
    monkeypatch.setattr(_session_backlog, "LAPSE_AFTER", 0.6)
    db = make_engine(database_url)
    await ControlStore(db).migrate()
    nowhere = f"127.0.0.1:{free_port()}"
    made: list[tuple[SessionsGateway, grpc.aio.Channel]] = []

    async def make(owner: str) -> SessionsGateway:
        channel = grpc.aio.insecure_channel(nowhere)
        gateway = SessionsGateway(channel)
        made.append((gateway, channel))
        await gateway.attach(db, owner)
        return gateway

    make.db = db
    yield make
    for gateway, channel in made:
        await gateway.close()
        await channel.close()
    await db.dispose()


async def test_a_live_replica_keeps_its_backlog_and_a_stopped_ones_is_taken_over(gateways):
    first, second = await gateways("rep_a"), await gateways("rep_b")
    waiting = [_execution(n) for n in range(3)]
    for execution in waiting:
        await first.track(execution, timeout=1, identity=ALICE)
    assert first.backlog == 3
    await asyncio.sleep(1.2)  # twice the lapse: the first renews its claim meanwhile
    assert second.backlog == 0
    await first.close()  # it stops (its memory is gone; its rows are not)
    assert await _wait(lambda: second.backlog == 3), second.backlog
    kept = list(second._backlog.items())
    assert [k for k, _ in kept] == [e.execution_id for e in waiting]  # oldest first
    assert all(who == ALICE for _, (_, who) in kept)
    assert [e for _, (e, _) in kept] == waiting


async def test_a_replica_restarted_under_its_name_takes_its_backlog_back_at_once(gateways):
    first = await gateways("rep_a")
    for n in range(2):
        await first.track(_execution(n), timeout=1, identity=ALICE)
    await first.close()
    again = await gateways("rep_a")
    assert again.backlog == 2  # at attach, with no lapse to wait for


async def test_stores_that_arrive_together_are_written_in_few_transactions(gateways):
    gateway = await gateways("rep_a")
    commits = []
    event.listen(gateways.db.sync_engine, "commit", lambda conn: commits.append(1))
    await asyncio.gather(*(gateway.track(_execution(n), timeout=1, identity=ALICE)
                           for n in range(300)))
    assert gateway.backlog == 300
    async with gateways.db.connect() as conn:
        stored = (await conn.execute(sa.select(sa.func.count()).select_from(
            session_backlog))).scalar()
    assert stored == 300
    assert len(commits) < 30, len(commits)  # one per row before


async def test_a_replica_whose_backlog_is_full_still_keeps_its_claim(gateways, monkeypatch):
    from baton_orchestrator import _sessions

    monkeypatch.setattr(_sessions, "MAX_BACKLOG", 2)
    first, second = await gateways("rep_a"), await gateways("rep_b")
    for n in range(2):
        await first.track(_execution(n), timeout=1, identity=ALICE)
    assert first.backlog == 2  # full: no room to take anything over
    await asyncio.sleep(1.2)  # twice the lapse
    assert second.backlog == 0  # the first still renewed its rows
