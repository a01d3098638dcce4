"""An execution that ends while the sessions service is away is recorded once it is back."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest

from baton.orchestrator.v1 import orchestrator_pb2 as opb
from baton.sessions.v1 import sessions_pb2 as spb
from baton_core import dict_to_struct

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
async def ready(orchestrator):
    """The orchestrator knows the example worker's methods (a file run alone)."""
    deadline = time.monotonic() + 20
    while True:
        try:
            await orchestrator.Dispatch(opb.DispatchRequest(
                operation="demo.sleep", params=dict_to_struct({"seconds": 0})), timeout=5)
            return
        except grpc.aio.AioRpcError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def test_a_dispatch_ending_while_the_sessions_service_is_down_reaches_its_history(
        platform, orchestrator, sessions, ready):
    session_id = (await sessions.CreateSession(spb.CreateSessionRequest(
        user_id=f"outage-{time.time_ns()}"))).session.session_id
    call = asyncio.ensure_future(orchestrator.Dispatch(opb.DispatchRequest(
        operation="demo.sleep", params=dict_to_struct({"seconds": 1}),
        session_id=session_id), timeout=30))
    await asyncio.sleep(0.4)
    service = platform.children["sessions"]
    service.kill()  # mid-call: the post-hook finds nobody to record the execution

    reply = await call
    await asyncio.to_thread(service.start)

    deadline = time.monotonic() + 30
    recorded: list[str] = []
    while time.monotonic() < deadline:
        history = await sessions.ListSessionExecutions(
            spb.ListSessionExecutionsRequest(session_id=session_id), timeout=5)
        recorded = [x.execution_id for x in history.executions]
        if recorded:
            break
        await asyncio.sleep(0.2)
    assert recorded == [reply.metadata.execution_id]
    got = await sessions.GetSession(spb.GetSessionRequest(session_id=session_id))
    assert got.session.execution_count == 1


async def _history(sessions, session_id: str, want: int, seconds: float = 30) -> list[str]:
    deadline = time.monotonic() + seconds
    recorded: list[str] = []
    while time.monotonic() < deadline:
        history = await sessions.ListSessionExecutions(
            spb.ListSessionExecutionsRequest(session_id=session_id), timeout=5)
        recorded = [x.execution_id for x in history.executions]
        if len(recorded) >= want:
            break
        await asyncio.sleep(0.2)
    return recorded


@pytest.mark.parametrize("stop", ["sigterm", "sigkill"])
async def test_an_execution_waiting_for_the_sessions_service_survives_an_orchestrator_restart(
        platform, orchestrator, sessions, ready, stop):
    session_id = (await sessions.CreateSession(spb.CreateSessionRequest(
        user_id=f"outage-restart-{time.time_ns()}"))).session.session_id
    call = asyncio.ensure_future(orchestrator.Dispatch(opb.DispatchRequest(
        operation="demo.sleep", params=dict_to_struct({"seconds": 1}),
        session_id=session_id), timeout=30))
    await asyncio.sleep(0.4)
    service, orch = platform.children["sessions"], platform.children["orchestrator"]
    service.kill()
    reply = await call  # answered: the execution waits in the orchestrator's backlog

    # The orchestrator goes away before the sessions service is back.
    if stop == "sigkill":
        orch.kill()
    else:
        await asyncio.to_thread(orch.stop)
    await asyncio.to_thread(orch.start)
    await asyncio.to_thread(service.start)

    recorded = await _history(sessions, session_id, 1)
    assert recorded == [reply.metadata.execution_id]
    got = await sessions.GetSession(spb.GetSessionRequest(session_id=session_id))
    assert got.session.execution_count == 1
