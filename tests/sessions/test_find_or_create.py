"""FindOrCreateSession is atomic: one active session per (user, casefile), whoever asks."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from baton.sessions.v1 import sessions_pb2 as pb
from baton.sessions.v1 import sessions_pb2_grpc as pb_grpc
from baton_cli._process import ChildProcess
from baton_core import constants as c
from baton_core import free_port

from .conftest import sql_rows, user


async def _find_or_create_concurrently(stubs, owner: str, casefile: str, calls: int):
    request = pb.FindOrCreateSessionRequest(user_id=owner, casefile_id=casefile)
    return await asyncio.gather(*(stubs[i % len(stubs)].FindOrCreateSession(request)
                                  for i in range(calls)))


async def _active_sessions(sql, owner: str, casefile: str) -> list[str]:
    rows = await sql_rows(sql, "SELECT session_id FROM sessions_sessions WHERE user_id = :u "
                          "AND casefile_id = :c AND status = 'ACTIVE'", u=owner, c=casefile)
    return [row.session_id for row in rows]


async def test_concurrent_calls_in_one_replica_share_one_session(sessions, sql):
    owner = user()
    replies = await _find_or_create_concurrently([sessions.stub], owner, "cf", 100)
    assert len({r.session.session_id for r in replies}) == 1
    assert sum(r.created for r in replies) == 1
    assert await _active_sessions(sql, owner, "cf") == [replies[0].session.session_id]


async def test_existing_session_is_found_not_created(sessions):
    owner = user()
    first = await sessions.stub.FindOrCreateSession(
        pb.FindOrCreateSessionRequest(user_id=owner, casefile_id="cf"))
    again = await sessions.stub.FindOrCreateSession(
        pb.FindOrCreateSessionRequest(user_id=owner, casefile_id="cf"))
    assert first.created and not again.created
    assert again.session.session_id == first.session.session_id
    no_casefile = await sessions.stub.FindOrCreateSession(
        pb.FindOrCreateSessionRequest(user_id=owner))
    assert no_casefile.created and no_casefile.session.casefile_id == ""


async def test_two_databases_behind_one_redis_never_share_a_session(start_sessions,
                                                                    databases):
    # Redis holds copies of what one SQL database holds. A service on another
    # database (a second deployment on the same Redis, or a data directory made
    # afresh) found the first one's session through the (user, casefile) index,
    # then could not track anything on it: SQL had no such session.
    first = await start_sessions()
    second = await start_sessions(database=await databases.new_url_async("other"))
    owner = user()
    request = pb.FindOrCreateSessionRequest(user_id=owner, casefile_id="cf")
    mine = await first.stub.FindOrCreateSession(request)
    theirs = await second.stub.FindOrCreateSession(request)
    assert mine.created and theirs.created
    assert theirs.session.session_id != mine.session.session_id
    tracked = await second.stub.TrackExecution(pb.TrackExecutionRequest(
        session_id=theirs.session.session_id,
        execution=pb.Execution(execution_id="x-1", operation="casefile.create")))
    assert tracked.execution.execution_id == "x-1"
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await second.stub.GetSession(pb.GetSessionRequest(session_id=mine.session.session_id))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    again = await first.stub.FindOrCreateSession(request)  # each still finds its own
    assert not again.created and again.session.session_id == mine.session.session_id


async def test_missing_user_is_invalid_argument(sessions):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await sessions.stub.FindOrCreateSession(pb.FindOrCreateSessionRequest(casefile_id="x"))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.fixture
async def two_processes(database_url, redis_url, tmp_path):
    """Two `baton serve sessions` processes sharing the test's database and Redis."""
    children, channels = [], []
    try:
        for name in ("sessions-1", "sessions-2"):
            address = f"127.0.0.1:{free_port()}"
            env = {c.ENV_LISTEN: address, c.ENV_DATABASE_URL: database_url,
                   c.ENV_REDIS_URL: redis_url, c.ENV_LOG_LEVEL: "WARNING", c.ENV_AUTH: "off"}
            child = ChildProcess.service(name, "sessions", env, tmp_path / f"{name}.log", address)
            children.append(child)
            await asyncio.to_thread(child.start)
            channels.append(grpc.aio.insecure_channel(address))
        yield [pb_grpc.SessionOrchestratorStub(channel) for channel in channels]
    finally:
        for channel in channels:
            await channel.close()
        for child in children:
            await asyncio.to_thread(child.stop)


async def test_concurrent_calls_across_two_processes_share_one_session(two_processes, sql):
    owner = user()
    replies = await _find_or_create_concurrently(two_processes, owner, "cf-shared", 100)
    assert len({r.session.session_id for r in replies}) == 1
    assert sum(r.created for r in replies) == 1
    assert await _active_sessions(sql, owner, "cf-shared") == [replies[0].session.session_id]
    # And after the session closes, the race for its successor has one winner too.
    await two_processes[0].CloseSession(
        pb.CloseSessionRequest(session_id=replies[0].session.session_id))
    again = await _find_or_create_concurrently(two_processes, owner, "cf-shared", 100)
    assert len({r.session.session_id for r in again}) == 1
    assert again[0].session.session_id != replies[0].session.session_id
    assert await _active_sessions(sql, owner, "cf-shared") == [again[0].session.session_id]
