"""Idle sessions expire after the TTL; the expiry is in SQL, once, whoever sweeps."""

from __future__ import annotations

import asyncio
import time

from baton.sessions.v1 import sessions_pb2 as pb

from .conftest import eventually, sql_rows, user

ACTIVE, EXPIRED = pb.Session.STATUS_ACTIVE, pb.Session.STATUS_EXPIRED


async def _status_in_sql(sql, sid: str):
    rows = await sql_rows(sql, "SELECT status, end_time FROM sessions_sessions "
                          "WHERE session_id = :id", id=sid)
    return rows[0]


async def test_idle_session_expires_and_sql_records_when(start_sessions, sql):
    replica = await start_sessions(ttl=1.0, sweep_interval=0.1)
    found = await replica.stub.FindOrCreateSession(
        pb.FindOrCreateSessionRequest(user_id=user(), casefile_id="cf"))
    sid = found.session.session_id

    async def expired() -> bool:
        return (await _status_in_sql(sql, sid)).status == "EXPIRED"

    await eventually(expired, timeout=10.0)
    row = await _status_in_sql(sql, sid)
    assert row.end_time is not None
    events = await sql_rows(sql, "SELECT type FROM sessions_events WHERE session_id = :id "
                            "ORDER BY sequence", id=sid)
    assert [e.type for e in events] == ["CREATED", "EXPIRED"]
    got = await replica.stub.GetSession(pb.GetSessionRequest(session_id=sid))
    assert got.session.status == EXPIRED and got.session.end_time.seconds > 0
    again = await replica.stub.FindOrCreateSession(
        pb.FindOrCreateSessionRequest(user_id=found.session.user_id, casefile_id="cf"))
    assert again.created and again.session.session_id != sid


async def test_reads_seen_only_by_redis_keep_a_session_alive(start_sessions, sql):
    # activity_lag=100: SQL never hears of the reads; the sweep must ask Redis.
    replica = await start_sessions(ttl=1.0, sweep_interval=0.1, activity_lag=100.0)
    created = await replica.stub.CreateSession(pb.CreateSessionRequest(user_id=user()))
    sid = created.session.session_id
    until = time.monotonic() + 2.5
    while time.monotonic() < until:
        got = await replica.stub.GetSession(pb.GetSessionRequest(session_id=sid))
        assert got.session.status == ACTIVE
        await asyncio.sleep(0.2)  # the pace of a user's reads: what this test is about
    assert (await _status_in_sql(sql, sid)).status == "ACTIVE"

    async def expired() -> bool:
        return (await _status_in_sql(sql, sid)).status == "EXPIRED"

    await eventually(expired, timeout=10.0)


async def test_idle_session_read_after_its_ttl_is_expired_not_revived(start_sessions):
    replica = await start_sessions(ttl=0.5)  # no sweep runs in this test
    created = await replica.stub.CreateSession(pb.CreateSessionRequest(user_id=user()))
    sid = created.session.session_id
    await asyncio.sleep(0.7)  # let the TTL pass
    got = await replica.stub.GetSession(pb.GetSessionRequest(session_id=sid))
    assert got.session.status == EXPIRED


async def test_replicas_sweeping_together_expire_each_session_once(start_sessions, sql):
    first = await start_sessions(ttl=0.5)
    second = await start_sessions(ttl=0.5)
    owner = user()
    ids = []
    for i in range(40):
        reply = await first.stub.CreateSession(pb.CreateSessionRequest(user_id=owner,
                                                                       casefile_id=str(i)))
        ids.append(reply.session.session_id)
    await asyncio.sleep(0.7)  # let the TTL pass
    counts = await asyncio.gather(first.app.expirer.sweep_once(),
                                  second.app.expirer.sweep_once(),
                                  first.app.expirer.sweep_once())
    assert sum(counts) == 40
    rows = await sql_rows(sql, "SELECT s.session_id, COUNT(e.id) AS n FROM sessions_sessions s "
                          "JOIN sessions_events e ON e.session_id = s.session_id "
                          "AND e.type = 'EXPIRED' WHERE s.user_id = :u "
                          "GROUP BY s.session_id", u=owner)
    assert sorted(r.session_id for r in rows) == sorted(ids)
    assert {r.n for r in rows} == {1}
