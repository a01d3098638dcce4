"""ListSessions filters by user, casefile and status, newest first, in pages."""

from __future__ import annotations

import grpc
import pytest

from baton.sessions.v1 import sessions_pb2 as pb

from .conftest import user

ACTIVE, CLOSED = pb.Session.STATUS_ACTIVE, pb.Session.STATUS_CLOSED


async def _all_pages(replica, **filters) -> list[list[str]]:
    pages, token = [], ""
    while True:
        reply = await replica.stub.ListSessions(pb.ListSessionsRequest(page_token=token,
                                                                       **filters))
        pages.append([s.session_id for s in reply.sessions])
        token = reply.next_page_token
        if not token:
            return pages


async def test_sessions_page_newest_first_with_filters(sessions):
    owner, other = user(), user()
    created = []
    for i in range(7):
        reply = await sessions.stub.CreateSession(
            pb.CreateSessionRequest(user_id=owner, casefile_id=f"cf-{i % 2}-{i}"))
        created.append(reply.session.session_id)
    await sessions.stub.CreateSession(pb.CreateSessionRequest(user_id=other, casefile_id="cf"))
    await sessions.stub.CloseSession(pb.CloseSessionRequest(session_id=created[2]))

    newest_first = created[::-1]
    assert await _all_pages(sessions, user_id=owner, page_size=3) == [
        newest_first[:3], newest_first[3:6], newest_first[6:]]
    assert await _all_pages(sessions, user_id=owner, status=CLOSED) == [[created[2]]]
    active = await _all_pages(sessions, user_id=owner, status=ACTIVE, page_size=10)
    assert active == [[s for s in newest_first if s != created[2]]]
    assert await _all_pages(sessions, casefile_id="cf-1-3") == [[created[3]]]
    assert await _all_pages(sessions, user_id=owner, casefile_id="cf-0-4") == [[created[4]]]


async def test_page_token_from_other_filters_is_invalid_argument(sessions):
    owner = user()
    for i in range(3):
        await sessions.stub.CreateSession(pb.CreateSessionRequest(user_id=owner,
                                                                  casefile_id=str(i)))
    first = await sessions.stub.ListSessions(pb.ListSessionsRequest(user_id=owner, page_size=1))
    for request in (pb.ListSessionsRequest(user_id=user(), page_token=first.next_page_token),
                    pb.ListSessionsRequest(user_id=owner, page_token="not-a-token"),
                    pb.ListSessionsRequest(user_id=owner, page_size=-1)):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await sessions.stub.ListSessions(request)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
