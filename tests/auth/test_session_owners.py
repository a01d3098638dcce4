"""With auth on, a user acts only on their own sessions and runs; admin, operator and
the services act on any (and a workflow run acts in the session it was started in)."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest

from baton.orchestrator.v1 import orchestrator_pb2, orchestrator_pb2_grpc, workflows_pb2_grpc
from baton.orchestrator.v1 import workflows_pb2 as wf
from baton.sessions.v1 import sessions_pb2 as pb
from baton.sessions.v1 import sessions_pb2_grpc
from baton_core import dict_to_struct, from_rpc_error


@pytest.fixture
async def people(secured_channels, auth_keys):
    """Two users' names, once the orchestrator knows the example worker's demo.echo."""
    dispatch = orchestrator_pb2_grpc.OrchestratorStub(secured_channels["orchestrator"])
    for _ in range(100):
        try:
            await dispatch.Dispatch(orchestrator_pb2.DispatchRequest(
                operation="demo.echo", params=dict_to_struct({"value": "x"})),
                metadata=auth_keys.bearer())
            break
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND:
                raise
            await asyncio.sleep(0.1)
    tag = uuid.uuid4().hex[:8]
    return {"alice": f"alice-{tag}", "bob": f"bob-{tag}"}


async def refused(call) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED, caught.value.details()
    return from_rpc_error(caught.value).reason


async def test_a_user_acts_only_on_their_own_sessions(secured_channels, auth_keys, people):
    sessions = sessions_pb2_grpc.SessionOrchestratorStub(secured_channels["sessions"])
    dispatch = orchestrator_pb2_grpc.OrchestratorStub(secured_channels["orchestrator"])
    alice = auth_keys.bearer(people["alice"], ["user"])
    bob = auth_keys.bearer(people["bob"], ["user"])
    mine = (await sessions.CreateSession(pb.CreateSessionRequest(
        user_id=people["alice"]), metadata=alice)).session
    theirs = mine.session_id

    assert await refused(sessions.CreateSession(pb.CreateSessionRequest(
        user_id=people["alice"], casefile_id="cf_x"), metadata=bob)) == "SESSION_NOT_OWNED"
    assert await refused(sessions.FindOrCreateSession(pb.FindOrCreateSessionRequest(
        user_id=people["alice"]), metadata=bob)) == "SESSION_NOT_OWNED"
    for call in (
            sessions.GetSession(pb.GetSessionRequest(session_id=theirs), metadata=bob),
            sessions.CloseSession(pb.CloseSessionRequest(session_id=theirs), metadata=bob),
            sessions.LinkSessionToCasefile(pb.LinkSessionToCasefileRequest(
                session_id=theirs, casefile_id="cf_bob"), metadata=bob),
            sessions.UpdateSessionContext(pb.UpdateSessionContextRequest(
                session_id=theirs, values=dict_to_struct({"hijack": True})), metadata=bob),
            sessions.ListSessionExecutions(pb.ListSessionExecutionsRequest(
                session_id=theirs), metadata=bob),
            sessions.ListSessions(pb.ListSessionsRequest(user_id=people["alice"]),
                                  metadata=bob),
            dispatch.Dispatch(orchestrator_pb2.DispatchRequest(
                operation="demo.echo", params=dict_to_struct({"value": "x"}),
                session_id=theirs), metadata=bob)):
        assert await refused(call) == "SESSION_NOT_OWNED"
    stream = sessions.WatchSession(pb.WatchSessionRequest(session_id=theirs), metadata=bob)
    assert await refused(stream.read()) == "SESSION_NOT_OWNED"

    # Bob's listing holds only his own sessions.
    await sessions.CreateSession(pb.CreateSessionRequest(user_id=people["bob"]), metadata=bob)
    listed = (await sessions.ListSessions(pb.ListSessionsRequest(), metadata=bob)).sessions
    assert [s.user_id for s in listed] == [people["bob"]]

    # Nothing Bob tried changed Alice's session; she and an operator still can.
    again = (await sessions.GetSession(pb.GetSessionRequest(session_id=theirs),
                                       metadata=alice)).session
    assert again.status == pb.Session.STATUS_ACTIVE and not again.casefile_id
    done = await dispatch.Dispatch(orchestrator_pb2.DispatchRequest(
        operation="demo.echo", params=dict_to_struct({"value": "x"}), session_id=theirs),
        metadata=alice)
    assert done.metadata.execution_id
    seen = await sessions.GetSession(pb.GetSessionRequest(session_id=theirs),
                                     metadata=auth_keys.bearer("ops", ["operator"]))
    assert seen.session.user_id == people["alice"]


async def test_a_run_acts_in_the_session_it_was_started_in(secured_channels, auth_keys,
                                                           people):
    sessions = sessions_pb2_grpc.SessionOrchestratorStub(secured_channels["sessions"])
    workflows = workflows_pb2_grpc.WorkflowsStub(secured_channels["orchestrator"])
    alice = auth_keys.bearer(people["alice"], ["user"])
    bob = auth_keys.bearer(people["bob"], ["user"])
    session = (await sessions.CreateSession(pb.CreateSessionRequest(
        user_id=people["alice"]), metadata=alice)).session
    definition = wf.Workflow(name="owned", steps=[wf.WorkflowStep(
        step_id="echo", method="demo.echo", params=dict_to_struct({"value": "x"}))])

    assert await refused(workflows.StartRun(wf.StartRunRequest(
        definition=definition, session_id=session.session_id), metadata=bob)) == \
        "SESSION_NOT_OWNED"
    run = (await workflows.StartRun(wf.StartRunRequest(
        definition=definition, session_id=session.session_id), metadata=alice)).run
    for _ in range(200):
        run = (await workflows.GetRun(wf.GetRunRequest(run_id=run.run_id),
                                      metadata=alice)).run
        if run.status not in (wf.Run.STATUS_PENDING, wf.Run.STATUS_RUNNING):
            break
        await asyncio.sleep(0.05)
    assert run.status == wf.Run.STATUS_SUCCEEDED, run
    history = await sessions.ListSessionExecutions(pb.ListSessionExecutionsRequest(
        session_id=session.session_id), metadata=alice)
    assert [(x.operation, x.run_id) for x in history.executions] == [("demo.echo", run.run_id)]

    # The run is Alice's too: Bob can neither see nor touch it; an operator can.
    theirs = run.run_id
    for call in (workflows.GetRun(wf.GetRunRequest(run_id=theirs), metadata=bob),
                 workflows.ListRunSteps(wf.ListRunStepsRequest(run_id=theirs), metadata=bob),
                 workflows.GetRunLogs(wf.GetRunLogsRequest(run_id=theirs), metadata=bob),
                 workflows.CancelRun(wf.CancelRunRequest(run_id=theirs), metadata=bob),
                 workflows.RetryRun(wf.RetryRunRequest(run_id=theirs), metadata=bob)):
        assert await refused(call) == "RUN_NOT_OWNED"
    stream = workflows.WatchRun(wf.WatchRunRequest(run_id=theirs), metadata=bob)
    assert await refused(stream.read()) == "RUN_NOT_OWNED"
    bobs = (await workflows.ListRuns(wf.ListRunsRequest(page_size=1000), metadata=bob)).runs
    assert theirs not in [r.run_id for r in bobs]
    alices = (await workflows.ListRuns(wf.ListRunsRequest(page_size=1000), metadata=alice)).runs
    assert theirs in [r.run_id for r in alices]
    seen = await workflows.GetRun(wf.GetRunRequest(run_id=theirs),
                                  metadata=auth_keys.bearer("ops", ["operator"]))
    assert seen.run.status == wf.Run.STATUS_SUCCEEDED


async def test_a_refused_read_is_no_activity_of_the_session(secured_channels, auth_keys,
                                                            people, redis_url):
    import redis.asyncio as aioredis

    sessions = sessions_pb2_grpc.SessionOrchestratorStub(secured_channels["sessions"])
    alice = auth_keys.bearer(people["alice"], ["user"])
    bob = auth_keys.bearer(people["bob"], ["user"])
    sid = (await sessions.CreateSession(pb.CreateSessionRequest(
        user_id=people["alice"]), metadata=alice)).session.session_id
    client = aioredis.from_url(redis_url)
    try:
        [key] = [k async for k in client.scan_iter(match=f"*{sid}*")
                 if await client.type(k) == b"hash"]
        before = await client.hget(key, "la")
        await asyncio.sleep(0.01)
        assert await refused(sessions.GetSession(pb.GetSessionRequest(session_id=sid),
                                                 metadata=bob)) == "SESSION_NOT_OWNED"
        assert await refused(sessions.CloseSession(pb.CloseSessionRequest(session_id=sid),
                                                   metadata=bob)) == "SESSION_NOT_OWNED"
        assert await client.hget(key, "la") == before  # bob kept nothing alive
        await sessions.GetSession(pb.GetSessionRequest(session_id=sid), metadata=alice)
        assert int(await client.hget(key, "la")) > int(before)  # alice's read is activity
    finally:
        await client.aclose()
