"""The executions waiting for the sessions service are kept in SQL: another
orchestrator on the same database takes up what one left behind."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest

from baton.sessions.v1 import sessions_pb2
from baton_core import Identity, free_port, make_engine
from baton_orchestrator import _sessions
from baton_orchestrator._control_store import ControlStore
from baton_orchestrator._sessions import SessionsGateway

pytestmark = pytest.mark.timeout(60)


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


async def test_a_live_orchestrator_takes_up_the_backlog_another_left(database_url, monkeypatch):
    monkeypatch.setattr(_sessions, "ADOPT_EVERY", 0.3)
    db = make_engine(database_url)
    await ControlStore(db).migrate()
    # Nothing listens there: every TrackExecution is UNAVAILABLE.
    nowhere = f"127.0.0.1:{free_port()}"
    channels = [grpc.aio.insecure_channel(nowhere) for _ in range(2)]
    first, second = (SessionsGateway(ch) for ch in channels)
    try:
        await second.attach(db)  # started first, with nothing stored
        await first.attach(db)
        alice = Identity("alice", ("user",), "")
        waiting = [_execution(n) for n in range(3)]
        for execution in waiting:
            await first.track(execution, timeout=1, identity=alice)
        assert first.backlog == 3
        # The first orchestrator dies (its memory is gone; its rows are not).
        await first.close()
        assert await _wait(lambda: second.backlog == 3), second.backlog
        kept = list(second._backlog.items())
        assert [k for k, _ in kept] == [e.execution_id for e in waiting]  # oldest first
        assert all(who == alice for _, (_, who) in kept)
        assert [e for _, (e, _) in kept] == waiting
    finally:
        for gateway in (first, second):
            await gateway.close()
        for channel in channels:
            await channel.close()
        await db.dispose()
