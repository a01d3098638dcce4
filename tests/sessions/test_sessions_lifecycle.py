"""Create, get, close and link sessions; every change is in SQL before the answer."""

from __future__ import annotations

import grpc
import pytest

from baton.sessions.v1 import sessions_pb2 as pb
from baton_core import from_rpc_error

from .conftest import sql_rows, user

ACTIVE, CLOSED = pb.Session.STATUS_ACTIVE, pb.Session.STATUS_CLOSED


async def test_created_session_is_active_and_committed_in_sql(sessions, sql):
    owner = user()
    reply = await sessions.stub.CreateSession(pb.CreateSessionRequest(
        user_id=owner, casefile_id="cf-1", labels={"team": "blue"}))
    session = reply.session
    assert (session.user_id, session.casefile_id, session.status) == (owner, "cf-1", ACTIVE)
    assert dict(session.labels) == {"team": "blue"}
    assert session.context.etag and session.create_time.seconds > 0
    rows = await sql_rows(sql, "SELECT status, casefile_id FROM sessions_sessions "
                          "WHERE session_id = :id", id=session.session_id)
    assert [tuple(r) for r in rows] == [("ACTIVE", "cf-1")]
    got = await sessions.stub.GetSession(pb.GetSessionRequest(session_id=session.session_id))
    assert got.session.session_id == session.session_id
    assert dict(got.session.labels) == {"team": "blue"}


async def test_repeated_request_id_returns_the_first_session(sessions):
    request = pb.CreateSessionRequest(user_id=user(), request_id="req-" + user())
    first = await sessions.stub.CreateSession(request)
    again = await sessions.stub.CreateSession(request)
    assert again.session.session_id == first.session.session_id
    # The same id for another request (another user's, other values) hands nothing over.
    for other in (pb.CreateSessionRequest(user_id=user(), request_id=request.request_id),
                  pb.CreateSessionRequest(user_id=request.user_id, casefile_id="cf-other",
                                          request_id=request.request_id)):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await sessions.stub.CreateSession(other)
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert from_rpc_error(caught.value).reason == "REQUEST_ID_REUSED"
        assert first.session.session_id not in caught.value.details()



async def test_a_repeated_create_returns_the_session_after_it_was_linked_elsewhere(sessions):
    # The answer to the first request was lost; meanwhile the session moved to another
    # casefile. The retry is the same request: it gets the session as it is now.
    for casefile in ("cf-first", ""):
        request = pb.CreateSessionRequest(user_id=user(), casefile_id=casefile,
                                          request_id="req-" + user())
        first = (await sessions.stub.CreateSession(request)).session
        await sessions.stub.LinkSessionToCasefile(pb.LinkSessionToCasefileRequest(
            session_id=first.session_id, casefile_id="cf-moved"))

        again = (await sessions.stub.CreateSession(request)).session

        assert (again.session_id, again.casefile_id) == (first.session_id, "cf-moved")

async def test_second_active_session_for_the_same_casefile_is_rejected(sessions):
    owner = user()
    first = await sessions.stub.CreateSession(pb.CreateSessionRequest(user_id=owner,
                                                                      casefile_id="cf"))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await sessions.stub.CreateSession(pb.CreateSessionRequest(user_id=owner,
                                                                  casefile_id="cf"))
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert from_rpc_error(caught.value).metadata["session_id"] == first.session.session_id
    assert caught.value.details() == (f"user {owner!r} already has an active session on "
                                      f"casefile 'cf': {first.session.session_id}")


async def test_missing_user_is_invalid_argument_with_field_violation(sessions):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await sessions.stub.CreateSession(pb.CreateSessionRequest())
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in from_rpc_error(caught.value).violations] == ["user_id"]


async def test_unknown_session_is_not_found(sessions):
    for call in (sessions.stub.GetSession(pb.GetSessionRequest(session_id="nope")),
                 sessions.stub.CloseSession(pb.CloseSessionRequest(session_id="nope"))):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_closing_twice_closes_once_and_frees_the_casefile(sessions, sql):
    owner = user()
    found = await sessions.stub.FindOrCreateSession(
        pb.FindOrCreateSessionRequest(user_id=owner, casefile_id="cf"))
    sid = found.session.session_id
    closed = await sessions.stub.CloseSession(pb.CloseSessionRequest(session_id=sid))
    again = await sessions.stub.CloseSession(pb.CloseSessionRequest(session_id=sid))
    assert closed.session.status == again.session.status == CLOSED
    assert closed.session.end_time == again.session.end_time
    assert closed.session.end_time.seconds > 0
    events = await sql_rows(sql, "SELECT type FROM sessions_events WHERE session_id = :id "
                            "ORDER BY sequence", id=sid)
    assert [e.type for e in events] == ["CREATED", "CLOSED"]
    got = await sessions.stub.GetSession(pb.GetSessionRequest(session_id=sid))
    assert got.session.status == CLOSED
    fresh = await sessions.stub.FindOrCreateSession(
        pb.FindOrCreateSessionRequest(user_id=owner, casefile_id="cf"))
    assert fresh.created and fresh.session.session_id != sid


async def test_linking_moves_the_session_to_the_casefile(sessions, sql):
    owner = user()
    created = await sessions.stub.CreateSession(pb.CreateSessionRequest(user_id=owner))
    sid = created.session.session_id
    linked = await sessions.stub.LinkSessionToCasefile(
        pb.LinkSessionToCasefileRequest(session_id=sid, casefile_id="cf-9"))
    assert linked.session.casefile_id == "cf-9"
    found = await sessions.stub.FindOrCreateSession(
        pb.FindOrCreateSessionRequest(user_id=owner, casefile_id="cf-9"))
    assert (found.session.session_id, found.created) == (sid, False)
    rows = await sql_rows(sql, "SELECT casefile_id FROM sessions_sessions WHERE session_id = :id",
                          id=sid)
    assert rows[0].casefile_id == "cf-9"
    # The old pair is free again: the index entry went with the link.
    other = await sessions.stub.FindOrCreateSession(
        pb.FindOrCreateSessionRequest(user_id=owner, casefile_id=""))
    assert other.created and other.session.session_id != sid


async def test_linking_onto_a_casefile_with_another_active_session_fails(sessions):
    owner = user()
    await sessions.stub.CreateSession(pb.CreateSessionRequest(user_id=owner, casefile_id="cf"))
    second = await sessions.stub.CreateSession(pb.CreateSessionRequest(user_id=owner))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await sessions.stub.LinkSessionToCasefile(pb.LinkSessionToCasefileRequest(
            session_id=second.session.session_id, casefile_id="cf"))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_linking_a_closed_session_fails(sessions):
    created = await sessions.stub.CreateSession(pb.CreateSessionRequest(user_id=user()))
    sid = created.session.session_id
    await sessions.stub.CloseSession(pb.CloseSessionRequest(session_id=sid))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await sessions.stub.LinkSessionToCasefile(
            pb.LinkSessionToCasefileRequest(session_id=sid, casefile_id="cf"))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
