"""Redis is only the hot tier: flushed, killed or restarted, no RPC fails, nothing is lost."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections import defaultdict

from baton.sessions.v1 import sessions_pb2 as pb
from baton_core import free_port
from baton_sessions import SessionsConfig
from baton_sessions._cache import HotTier

from .conftest import eventually, user

SESSIONS = 4
CLIENTS = 8


class Traffic:
    """Clients tracking executions, reading sessions and finding them, until stopped.

    Any failed RPC ends the run with its error.
    """

    def __init__(self, replica, sessions: list[pb.Session]) -> None:
        self.replica = replica
        self.sessions = sessions
        self.tracked: dict[str, list[str]] = defaultdict(list)
        self.calls = 0
        self._stop = asyncio.Event()
        self._tasks = [asyncio.create_task(self._client(i)) for i in range(CLIENTS)]

    async def _client(self, number: int) -> None:
        stub, i = self.replica.stub, 0
        while not self._stop.is_set():
            session = self.sessions[(number + i) % len(self.sessions)]
            sid, execution_id = session.session_id, f"c{number}-{i}"
            await stub.TrackExecution(pb.TrackExecutionRequest(
                session_id=sid, execution=pb.Execution(execution_id=execution_id,
                                                       operation="op.run")))
            self.tracked[sid].append(execution_id)
            got = await stub.GetSession(pb.GetSessionRequest(session_id=sid))
            assert got.session.execution_count >= 1
            found = await stub.FindOrCreateSession(pb.FindOrCreateSessionRequest(
                user_id=session.user_id, casefile_id=session.casefile_id))
            assert found.session.session_id == sid and not found.created
            self.calls += 3
            i += 1

    async def more_calls(self, count: int) -> None:
        """Waits until `count` more calls have succeeded (or a client failed)."""
        target = self.calls + count

        async def done() -> bool:
            for task in self._tasks:
                if task.done():
                    task.result()  # raises the client's error
            return self.calls >= target

        await eventually(done, timeout=30.0, interval=0.01)

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)


async def _open_sessions(replica, count: int) -> list[pb.Session]:
    owner = user()
    return [(await replica.stub.FindOrCreateSession(pb.FindOrCreateSessionRequest(
        user_id=owner, casefile_id=f"cf-{i}"))).session for i in range(count)]


async def _all_execution_ids(replica, sid: str) -> list[str]:
    ids, token = [], ""
    while True:
        reply = await replica.stub.ListSessionExecutions(pb.ListSessionExecutionsRequest(
            session_id=sid, page_size=25, page_token=token))
        ids += [x.execution_id for x in reply.executions]
        token = reply.next_page_token
        if not token:
            return ids


async def _assert_nothing_lost(replica, traffic: Traffic) -> None:
    for session in traffic.sessions:
        sid = session.session_id
        listed = await _all_execution_ids(replica, sid)
        assert sorted(listed) == sorted(traffic.tracked[sid])
        assert len(listed) == len(set(listed))
        got = await replica.stub.GetSession(pb.GetSessionRequest(session_id=sid))
        assert got.session.execution_count == len(traffic.tracked[sid])


async def test_no_rpc_fails_while_redis_is_killed_flushed_and_restarted(
        start_sessions, private_redis, redis_of, caplog):
    redis = private_redis()
    replica = await start_sessions(redis.url, history_limit=20)
    traffic = Traffic(replica, await _open_sessions(replica, SESSIONS))
    await traffic.more_calls(150)

    with caplog.at_level(logging.WARNING, logger="baton.sessions.cache"):
        redis.kill()
        await traffic.more_calls(150)
        assert replica.fallbacks() > 0
        assert not replica.app.cache.available

        redis = private_redis(port=redis.port)
        client = redis_of(redis.url)
        await client.flushall()
        await eventually(lambda: _available(replica))
        await traffic.more_calls(150)
    outages = [r for r in caplog.records if "Redis unavailable" in r.getMessage()]
    assert len(outages) == 1, "one warning per outage, not one per call"

    await client.flushall()  # and a flush while traffic runs
    await traffic.more_calls(150)
    await traffic.stop()
    await _assert_nothing_lost(replica, traffic)

    sid = traffic.sessions[0].session_id
    key = replica.app.cache.keys.session(sid)
    await client.delete(key)
    await replica.stub.GetSession(pb.GetSessionRequest(session_id=sid))
    assert await client.exists(key), "the hot tier refills on a read"


async def test_redis_back_with_old_data_does_not_serve_it(start_sessions, private_redis):
    redis = private_redis(persist=True)
    replica = await start_sessions(redis.url)
    session = (await _open_sessions(replica, 1))[0]
    sid = session.session_id
    context = await replica.stub.UpdateSessionContext(
        pb.UpdateSessionContextRequest(session_id=sid, values={"step": 1}))
    traffic = Traffic(replica, [session])
    await traffic.more_calls(30)

    redis.stop()  # SIGTERM: Redis saves what it holds and comes back with it
    await traffic.more_calls(60)
    await traffic.stop()
    changed = await replica.stub.UpdateSessionContext(pb.UpdateSessionContextRequest(
        session_id=sid, values={"step": 2}, etag=context.context.etag))
    await replica.stub.CloseSession(pb.CloseSessionRequest(session_id=sid))

    private_redis(port=redis.port, persist=True)
    expected = len(traffic.tracked[sid])

    async def hot_and_fresh() -> bool:
        got = await replica.stub.GetSession(pb.GetSessionRequest(session_id=sid))
        assert got.session.execution_count == expected
        assert got.session.status == pb.Session.STATUS_CLOSED
        assert got.session.context.etag == changed.context.etag
        return replica.app.cache.available

    await eventually(hot_and_fresh)
    await hot_and_fresh()  # now answered by Redis, not SQL
    await _assert_nothing_lost(replica, traffic)
    fresh = await replica.stub.FindOrCreateSession(pb.FindOrCreateSessionRequest(
        user_id=session.user_id, casefile_id=session.casefile_id))
    assert fresh.created and fresh.session.session_id != sid


async def test_replica_started_without_redis_serves_from_sql(start_sessions, private_redis):
    redis = private_redis()
    port = redis.port
    redis.stop()
    replica = await start_sessions(f"redis://127.0.0.1:{port}/0")
    session = (await _open_sessions(replica, 1))[0]
    traffic = Traffic(replica, [session])
    await traffic.more_calls(30)
    private_redis(port=port)
    await eventually(lambda: _available(replica))
    await traffic.more_calls(30)
    await traffic.stop()
    await _assert_nothing_lost(replica, traffic)


async def _available(replica) -> bool:
    """True once traffic found Redis again (the tier retries it on use)."""
    return replica.app.cache.available


async def test_hung_redis_costs_a_timeout_not_a_failed_call(start_sessions, private_redis):
    redis = private_redis()
    replica = await start_sessions(redis.url, redis_timeout=0.2)
    session = (await _open_sessions(replica, 1))[0]
    traffic = Traffic(replica, [session])
    await traffic.more_calls(30)
    os.kill(redis.proc.pid, signal.SIGSTOP)  # accepts connections, answers nothing
    try:
        await traffic.more_calls(60)
        assert not replica.app.cache.available
    finally:
        os.kill(redis.proc.pid, signal.SIGCONT)
    await eventually(lambda: _available(replica))
    await traffic.more_calls(30)
    await traffic.stop()
    await _assert_nothing_lost(replica, traffic)


async def test_a_redis_that_does_not_answer_at_start_is_named_in_a_warning(caplog, redis_url):
    # Misconfigured, the service ran on SQL alone without a word.
    for url in (redis_url, f"redis://:secret@127.0.0.1:{free_port()}/0"):
        tier = HotTier(url, SessionsConfig(), None)
        with caplog.at_level(logging.WARNING, logger="baton.sessions.cache"):
            await tier.start()
        await tier.stop()
    warned = [r.getMessage() for r in caplog.records if "does not answer" in r.getMessage()]
    assert len(warned) == 1  # not for the Redis that answers
    assert "redis://:***@127.0.0.1" in warned[0] and "secret" not in warned[0]
