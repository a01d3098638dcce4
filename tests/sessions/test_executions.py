"""TrackExecution commits before answering; ListSessionExecutions pages newest first."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from baton.sessions.v1 import sessions_pb2 as pb
from baton_core import from_rpc_error

from .conftest import sql_rows, user

SUCCEEDED, FAILED = pb.Execution.STATUS_SUCCEEDED, pb.Execution.STATUS_FAILED


async def _session(replica) -> str:
    reply = await replica.stub.CreateSession(pb.CreateSessionRequest(user_id=user()))
    return reply.session.session_id


async def _track(replica, sid: str, execution_id: str, **fields) -> pb.Execution:
    fields.setdefault("status", SUCCEEDED)
    execution = pb.Execution(execution_id=execution_id, operation="casefile.create", **fields)
    reply = await replica.stub.TrackExecution(
        pb.TrackExecutionRequest(session_id=sid, execution=execution))
    return reply.execution


async def _list_all(replica, sid: str, page_size: int) -> list[list[str]]:
    pages, token = [], ""
    while True:
        reply = await replica.stub.ListSessionExecutions(pb.ListSessionExecutionsRequest(
            session_id=sid, page_size=page_size, page_token=token))
        pages.append([x.execution_id for x in reply.executions])
        token = reply.next_page_token
        if not token:
            return pages


async def test_tracked_execution_is_committed_with_counter_and_event(sessions, sql):
    sid = await _session(sessions)
    stored = await _track(sessions, sid, "x-1", error="", run_id="run-1", step_id="s1",
                          actor="alice", result={"rows": 3, "ok": True})
    assert (stored.session_id, stored.operation, stored.status) == (sid, "casefile.create",
                                                                   SUCCEEDED)
    assert stored.create_time.seconds > 0
    rows = await sql_rows(sql, "SELECT execution_id, run_id, actor FROM sessions_executions "
                          "WHERE session_id = :id", id=sid)
    assert [tuple(r) for r in rows] == [("x-1", "run-1", "alice")]
    events = await sql_rows(sql, "SELECT type FROM sessions_events WHERE session_id = :id "
                            "ORDER BY sequence", id=sid)
    assert [e.type for e in events] == ["CREATED", "EXECUTION_TRACKED"]
    session = await sessions.stub.GetSession(pb.GetSessionRequest(session_id=sid))
    assert session.session.execution_count == 1


async def test_repeated_execution_id_returns_the_first_record(sessions):
    sid = await _session(sessions)
    first = await _track(sessions, sid, "x-1", status=FAILED, error="boom")
    again = await _track(sessions, sid, "x-1")
    assert again == first
    session = await sessions.stub.GetSession(pb.GetSessionRequest(session_id=sid))
    assert session.session.execution_count == 1


async def test_execution_without_id_gets_one_assigned(sessions):
    sid = await _session(sessions)
    stored = await _track(sessions, sid, "")
    assert stored.execution_id


async def test_invalid_or_unknown_targets_are_rejected(sessions):
    sid = await _session(sessions)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await sessions.stub.TrackExecution(pb.TrackExecutionRequest(
            session_id=sid, execution=pb.Execution()))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _track(sessions, "no-such-session", "x")
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert from_rpc_error(caught.value).reason == "SESSION_NOT_FOUND"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await sessions.stub.ListSessionExecutions(
            pb.ListSessionExecutionsRequest(session_id="no-such-session"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    error = from_rpc_error(caught.value)
    assert (error.reason, error.metadata) == ("SESSION_NOT_FOUND",
                                              {"session_id": "no-such-session"})


async def test_history_pages_newest_first_past_what_redis_keeps(start_sessions):
    replica = await start_sessions(history_limit=5)
    sid = await _session(replica)
    ids = [f"x-{i:02d}" for i in range(12)]
    for execution_id in ids:
        await _track(replica, sid, execution_id)
    newest_first = ids[::-1]
    assert await _list_all(replica, sid, 5) == [newest_first[:5], newest_first[5:10],
                                                newest_first[10:]]
    assert await _list_all(replica, sid, 4) == [newest_first[:4], newest_first[4:8],
                                                newest_first[8:]]
    assert await _list_all(replica, sid, 50) == [newest_first]


async def test_history_is_whole_after_redis_loses_it_and_refills(sessions, redis_of, redis_url):
    sid = await _session(sessions)
    ids = [f"x-{i}" for i in range(7)]
    for execution_id in ids:
        await _track(sessions, sid, execution_id)
    redis = redis_of(redis_url)
    await redis.delete(sessions.app.cache.keys.history(sid))
    assert await _list_all(sessions, sid, 3) == [ids[:3:-1], ids[3:0:-1], ids[:1]]
    assert await redis.zcard(sessions.app.cache.keys.history(sid)) == 7
    assert await _list_all(sessions, sid, 10) == [ids[::-1]]


async def test_bad_page_token_is_invalid_argument(sessions):
    sid = await _session(sessions)
    other = await _session(sessions)
    for _ in range(3):
        await _track(sessions, other, "")
    first = await sessions.stub.ListSessionExecutions(
        pb.ListSessionExecutionsRequest(session_id=other, page_size=1))
    for token in ("garbage", first.next_page_token):  # the second belongs to another session
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await sessions.stub.ListSessionExecutions(
                pb.ListSessionExecutionsRequest(session_id=sid, page_token=token))
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_concurrent_tracking_counts_each_execution_once(sessions, sql):
    sid = await _session(sessions)

    async def track(execution_id: str, session_id: str = sid):
        try:
            return await _track(sessions, session_id, execution_id)
        except grpc.aio.AioRpcError as exc:
            return exc.code()

    # Repeats of one id, distinct ids and an unknown session, all at once: the
    # writes that fail must not undo or double the others.
    results = await asyncio.gather(*(track("same") for _ in range(20)),
                                   *(track(f"x-{i}") for i in range(20)),
                                   *(track("lost", "no-such-session") for _ in range(5)))
    repeats, distinct, unknown = results[:20], results[20:40], results[40:]
    assert len({r.SerializeToString(deterministic=True) for r in repeats}) == 1
    assert all(isinstance(r, pb.Execution) for r in distinct)
    assert unknown == [grpc.StatusCode.NOT_FOUND] * 5
    session = await sessions.stub.GetSession(pb.GetSessionRequest(session_id=sid))
    assert session.session.execution_count == 21
    rows = await sql_rows(sql, "SELECT COUNT(*) AS n, MAX(sequence) AS last FROM sessions_events "
                          "WHERE session_id = :id", id=sid)
    assert (rows[0].n, rows[0].last) == (22, 22)  # CREATED + 21, no gaps
