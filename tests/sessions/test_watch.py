"""WatchSession replays a session's events from the outbox, then follows new ones."""

from __future__ import annotations

import grpc
import pytest

from baton.sessions.v1 import sessions_pb2 as pb
from baton_core import struct_to_dict

from .conftest import user

EV = pb.SessionEvent


async def _track(replica, sid: str, execution_id: str) -> None:
    await replica.stub.TrackExecution(pb.TrackExecutionRequest(
        session_id=sid, execution=pb.Execution(execution_id=execution_id, operation="op.run")))


async def test_watch_replays_history_then_follows_live_events(sessions):
    created = await sessions.stub.CreateSession(pb.CreateSessionRequest(user_id=user()))
    sid = created.session.session_id
    await _track(sessions, sid, "x-1")
    await _track(sessions, sid, "x-2")

    watch = sessions.watch(sid)
    replayed = [await watch.next() for _ in range(3)]
    assert [(e.sequence, e.type) for e in replayed] == [
        (1, EV.TYPE_CREATED), (2, EV.TYPE_EXECUTION_TRACKED), (3, EV.TYPE_EXECUTION_TRACKED)]
    assert struct_to_dict(replayed[1].data)["execution_id"] == "x-1"

    await sessions.stub.LinkSessionToCasefile(
        pb.LinkSessionToCasefileRequest(session_id=sid, casefile_id="cf"))
    await sessions.stub.UpdateSessionContext(
        pb.UpdateSessionContextRequest(session_id=sid, values={"k": "v"}))
    await sessions.stub.CloseSession(pb.CloseSessionRequest(session_id=sid))
    live = [await watch.next() for _ in range(3)]
    assert [(e.sequence, e.type) for e in live] == [
        (4, EV.TYPE_LINKED), (5, EV.TYPE_CONTEXT_CHANGED), (6, EV.TYPE_CLOSED)]
    assert all(e.session_id == sid and e.create_time.seconds > 0 for e in live)


async def test_watch_resumes_after_a_given_sequence(sessions):
    created = await sessions.stub.CreateSession(pb.CreateSessionRequest(user_id=user()))
    sid = created.session.session_id
    for i in range(3):
        await _track(sessions, sid, f"x-{i}")
    watch = sessions.watch(sid, after=2)
    assert (await watch.next()).sequence == 3
    assert (await watch.next()).sequence == 4


async def test_watch_in_one_replica_sees_commits_of_another_at_once(start_sessions):
    # Polling SQL alone would take 30 s here: the wake-up has to cross Redis.
    watching = await start_sessions(watch_poll_interval=30.0)
    writing = await start_sessions()
    created = await writing.stub.CreateSession(pb.CreateSessionRequest(user_id=user()))
    sid = created.session.session_id
    watch = watching.watch(sid)
    assert (await watch.next()).type == EV.TYPE_CREATED
    for i in range(3):
        await _track(writing, sid, f"x-{i}")
        event = await watch.next(timeout=5.0)
        assert (event.type, event.sequence) == (EV.TYPE_EXECUTION_TRACKED, i + 2)


async def test_watching_an_unknown_session_is_not_found(sessions):
    watch = sessions.watch("no-such-session")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await watch.next()
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_watch_follows_another_replica_by_polling_while_redis_is_down(start_sessions,
                                                                            private_redis):
    redis = private_redis()
    watching = await start_sessions(redis.url, watch_poll_interval=0.2)
    writing = await start_sessions(redis.url)
    created = await writing.stub.CreateSession(pb.CreateSessionRequest(user_id=user()))
    sid = created.session.session_id
    watch = watching.watch(sid)
    assert (await watch.next()).type == EV.TYPE_CREATED
    redis.kill()
    for i in range(3):
        await _track(writing, sid, f"x-{i}")
        event = await watch.next(timeout=5.0)
        assert (event.type, event.sequence) == (EV.TYPE_EXECUTION_TRACKED, i + 2)
