"""The session context: FieldMask updates guarded by an etag."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.protobuf import field_mask_pb2

from baton.sessions.v1 import sessions_pb2 as pb
from baton_core import struct_to_dict

from .conftest import user


async def _session(replica) -> pb.Session:
    return (await replica.stub.CreateSession(pb.CreateSessionRequest(user_id=user()))).session


def _update(sid: str, values: dict, etag: str = "", paths: tuple[str, ...] = ()):
    return pb.UpdateSessionContextRequest(
        session_id=sid, values=values, etag=etag,
        update_mask=field_mask_pb2.FieldMask(paths=list(paths)))


async def test_masked_update_sets_and_removes_only_named_keys(sessions):
    session = await _session(sessions)
    sid = session.session_id
    first = await sessions.stub.UpdateSessionContext(
        _update(sid, {"a": 1, "b": "two", "c": [1, 2]}, session.context.etag))
    assert first.context.etag != session.context.etag
    second = await sessions.stub.UpdateSessionContext(
        _update(sid, {"a": 10, "z": "ignored"}, first.context.etag, paths=("a", "b")))
    assert struct_to_dict(second.context.values) == {"a": 10, "c": [1, 2]}
    got = await sessions.stub.GetSession(pb.GetSessionRequest(session_id=sid))
    assert struct_to_dict(got.session.context.values) == {"a": 10, "c": [1, 2]}
    assert got.session.context.etag == second.context.etag


async def test_stale_etag_is_aborted_and_changes_nothing(sessions):
    session = await _session(sessions)
    sid = session.session_id
    fresh = await sessions.stub.UpdateSessionContext(
        _update(sid, {"v": 1}, session.context.etag))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await sessions.stub.UpdateSessionContext(_update(sid, {"v": 2}, session.context.etag))
    assert caught.value.code() == grpc.StatusCode.ABORTED
    got = await sessions.stub.GetSession(pb.GetSessionRequest(session_id=sid))
    assert struct_to_dict(got.session.context.values) == {"v": 1}
    assert got.session.context.etag == fresh.context.etag


async def test_concurrent_writers_with_one_etag_have_one_winner(sessions):
    session = await _session(sessions)

    async def write(i: int):
        try:
            return await sessions.stub.UpdateSessionContext(
                _update(session.session_id, {"writer": i}, session.context.etag))
        except grpc.aio.AioRpcError as exc:
            return exc.code()

    results = await asyncio.gather(*(write(i) for i in range(10)))
    winners = [r for r in results if isinstance(r, pb.UpdateSessionContextResponse)]
    assert len(winners) == 1
    assert results.count(grpc.StatusCode.ABORTED) == 9


async def test_update_without_etag_always_applies(sessions):
    session = await _session(sessions)
    await sessions.stub.UpdateSessionContext(_update(session.session_id, {"a": 1}))
    reply = await sessions.stub.UpdateSessionContext(
        _update(session.session_id, {"b": 2}, paths=("b",)))
    assert struct_to_dict(reply.context.values) == {"a": 1, "b": 2}


async def test_oversized_document_and_nested_paths_are_invalid(start_sessions):
    replica = await start_sessions(context_max_bytes=100)
    session = await _session(replica)
    for request in (_update(session.session_id, {"big": "x" * 200}),
                    _update(session.session_id, {"a": {"b": 1}}, paths=("a.b",))):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await replica.stub.UpdateSessionContext(request)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_unknown_session_is_not_found(sessions):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await sessions.stub.UpdateSessionContext(_update("nope", {"a": 1}))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
