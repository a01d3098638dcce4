"""A closed session is final; concurrent writers of one session queue, not abort."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.protobuf import field_mask_pb2

from baton.sessions.v1 import sessions_pb2 as pb
from baton_core import from_rpc_error, struct_to_dict

from .conftest import user


async def _closed_session(replica) -> str:
    sid = (await replica.stub.CreateSession(pb.CreateSessionRequest(user_id=user()))
           ).session.session_id
    await replica.stub.TrackExecution(pb.TrackExecutionRequest(
        session_id=sid, execution=pb.Execution(execution_id="ex_before", operation="a.b")))
    await replica.stub.CloseSession(pb.CloseSessionRequest(session_id=sid))
    return sid


async def test_a_closed_session_records_no_executions_and_keeps_its_context(sessions):
    sid = await _closed_session(sessions)

    with pytest.raises(grpc.aio.AioRpcError) as tracked:
        await sessions.stub.TrackExecution(pb.TrackExecutionRequest(
            session_id=sid, execution=pb.Execution(execution_id="ex_after", operation="a.b")))
    with pytest.raises(grpc.aio.AioRpcError) as updated:
        await sessions.stub.UpdateSessionContext(pb.UpdateSessionContextRequest(
            session_id=sid, values={"k": 1}))

    for caught in (tracked, updated):
        err = from_rpc_error(caught.value)
        assert (err.code, err.reason) == (grpc.StatusCode.FAILED_PRECONDITION,
                                          "SESSION_NOT_ACTIVE")
        assert "CLOSED" in err.message
    got = (await sessions.stub.GetSession(pb.GetSessionRequest(session_id=sid))).session
    assert got.execution_count == 1 and struct_to_dict(got.context.values) == {}
    history = await sessions.stub.ListSessionExecutions(
        pb.ListSessionExecutionsRequest(session_id=sid))
    assert [x.execution_id for x in history.executions] == ["ex_before"]
    # A repeat of what was recorded before the close still answers with the record.
    again = await sessions.stub.TrackExecution(pb.TrackExecutionRequest(
        session_id=sid, execution=pb.Execution(execution_id="ex_before", operation="a.b")))
    assert again.execution.execution_id == "ex_before"


async def test_concurrent_updates_without_an_etag_all_apply(sessions):
    sid = (await sessions.stub.CreateSession(pb.CreateSessionRequest(user_id=user()))
           ).session.session_id

    await asyncio.gather(*(sessions.stub.UpdateSessionContext(pb.UpdateSessionContextRequest(
        session_id=sid, values={f"k{i}": i}, update_mask=field_mask_pb2.FieldMask(
            paths=[f"k{i}"]))) for i in range(50)))

    got = (await sessions.stub.GetSession(pb.GetSessionRequest(session_id=sid))).session
    assert struct_to_dict(got.context.values) == {f"k{i}": i for i in range(50)}


async def test_concurrent_links_of_one_session_all_answer(sessions):
    sid = (await sessions.stub.CreateSession(pb.CreateSessionRequest(user_id=user()))
           ).session.session_id

    replies = await asyncio.gather(*(sessions.stub.LinkSessionToCasefile(
        pb.LinkSessionToCasefileRequest(session_id=sid, casefile_id=f"cf_{i}"))
        for i in range(30)))

    final = (await sessions.stub.GetSession(pb.GetSessionRequest(session_id=sid))).session
    assert final.casefile_id in {r.session.casefile_id for r in replies}


async def test_numbers_json_cannot_hold_are_refused_and_nothing_is_stored(sessions):
    sid = (await sessions.stub.CreateSession(pb.CreateSessionRequest(user_id=user()))
           ).session.session_id
    result = pb.Execution(execution_id="ex_nan", operation="a.b")
    result.result.update({"score": float("nan")})
    calls = (sessions.stub.TrackExecution(pb.TrackExecutionRequest(session_id=sid,
                                                                   execution=result)),
             sessions.stub.UpdateSessionContext(pb.UpdateSessionContextRequest(
                 session_id=sid, values={"limit": float("inf")})))
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    got = (await sessions.stub.GetSession(pb.GetSessionRequest(session_id=sid))).session
    assert got.execution_count == 0 and struct_to_dict(got.context.values) == {}


async def test_a_duration_out_of_range_is_refused(sessions):
    sid = (await sessions.stub.CreateSession(pb.CreateSessionRequest(user_id=user()))
           ).session.session_id
    execution = pb.Execution(execution_id="ex_long", operation="a.b")
    execution.duration.seconds = 315_576_000_001
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await sessions.stub.TrackExecution(pb.TrackExecutionRequest(
            session_id=sid, execution=execution))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
