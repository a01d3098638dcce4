"""Dispatch end to end: worker registers → orchestrator → result → session history."""

from __future__ import annotations

import time

import grpc
import pytest

from baton.orchestrator.v1 import orchestrator_pb2
from baton.registry.v1 import registry_pb2
from baton.sessions.v1 import sessions_pb2
from baton_core import dict_to_struct, from_rpc_error, seconds_to_duration, struct_to_dict
from baton_sdk import OrchestratorClient


async def wait_for_method(registry, name: str, timeout: float = 15.0) -> registry_pb2.Method:
    deadline = time.monotonic() + timeout
    async for event in registry.WatchMethods(registry_pb2.WatchMethodsRequest(), timeout=timeout):
        method = event.method
        if method.name == name and any(
                e.state == registry_pb2.Endpoint.STATE_AVAILABLE for e in method.endpoints):
            return method
        if time.monotonic() > deadline:
            break
    raise AssertionError(f"{name} never became available")


def dispatch_request(operation: str, params: dict, **kwargs) -> orchestrator_pb2.DispatchRequest:
    return orchestrator_pb2.DispatchRequest(operation=operation, params=dict_to_struct(params),
                                            **kwargs)


async def test_dispatch_runs_the_method_and_records_it_in_the_session(
        orchestrator, registry, sessions, platform):
    await wait_for_method(registry, "casefile.create")
    session = (await sessions.CreateSession(
        sessions_pb2.CreateSessionRequest(user_id="alice"))).session

    reply = await orchestrator.Dispatch(dispatch_request(
        "casefile.create", {"title": "Broken boiler"}, session_id=session.session_id), timeout=10)

    result = struct_to_dict(reply.result)
    assert result["casefile_id"]
    meta = reply.metadata
    assert meta.attempts == 1
    assert meta.worker_address == platform.addrs["worker"]
    assert meta.execution_id.startswith("ex_")
    assert meta.total_duration.ToNanoseconds() >= meta.worker_duration.ToNanoseconds() > 0
    assert "session_lifecycle" in meta.hooks_run
    history = await sessions.ListSessionExecutions(
        sessions_pb2.ListSessionExecutionsRequest(session_id=session.session_id))
    assert [e.execution_id for e in history.executions] == [meta.execution_id]
    assert history.executions[0].operation == "casefile.create"
    assert history.executions[0].status == sessions_pb2.Execution.STATUS_SUCCEEDED


async def test_a_result_too_large_for_the_history_is_recorded_without_it(
        orchestrator, registry, sessions):
    await wait_for_method(registry, "demo.echo")
    session = (await sessions.CreateSession(
        sessions_pb2.CreateSessionRequest(user_id="alice-with-a-large-result"))).session
    big = "x" * 20_000
    reply = await orchestrator.Dispatch(dispatch_request(
        "demo.echo", {"value": big}, session_id=session.session_id), timeout=10)
    assert struct_to_dict(reply.result)["value"] == big  # the caller gets it all

    history = await sessions.ListSessionExecutions(
        sessions_pb2.ListSessionExecutionsRequest(session_id=session.session_id))
    [execution] = history.executions
    assert execution.execution_id == reply.metadata.execution_id
    assert execution.status == sessions_pb2.Execution.STATUS_SUCCEEDED
    kept = struct_to_dict(execution.result)
    assert list(kept) == ["result_omitted"] and "over the history's limit of 16384" in \
        kept["result_omitted"]


async def test_results_of_one_dispatch_feed_the_next(orchestrator, registry):
    await wait_for_method(registry, "casefile.add_note")
    created = await orchestrator.Dispatch(dispatch_request("casefile.create", {"title": "t"}))
    casefile_id = struct_to_dict(created.result)["casefile_id"]
    for expected in (1, 2):
        reply = await orchestrator.Dispatch(dispatch_request(
            "casefile.add_note", {"casefile_id": casefile_id, "text": f"note {expected}"}))
        assert struct_to_dict(reply.result)["note_count"] == expected


async def test_unknown_operation_is_not_found(orchestrator):
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await orchestrator.Dispatch(dispatch_request("nosuch.method", {}))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert from_rpc_error(info.value).reason == "METHOD_NOT_FOUND"


async def test_bad_params_list_every_field_violation(orchestrator, registry):
    await wait_for_method(registry, "casefile.create")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await orchestrator.Dispatch(dispatch_request(
            "casefile.create", {"description": 42}))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = {f for f, _ in from_rpc_error(info.value).violations}
    assert {"params.title", "params.description"} <= fields


async def test_bad_params_in_a_session_are_not_recorded(orchestrator, registry, sessions):
    await wait_for_method(registry, "casefile.create")
    session = (await sessions.CreateSession(
        sessions_pb2.CreateSessionRequest(user_id="bob"))).session
    with pytest.raises(grpc.aio.AioRpcError):
        await orchestrator.Dispatch(dispatch_request(
            "casefile.create", {}, session_id=session.session_id))
    history = await sessions.ListSessionExecutions(
        sessions_pb2.ListSessionExecutionsRequest(session_id=session.session_id))
    assert list(history.executions) == []


async def test_a_failing_method_reaches_the_caller_as_a_clear_error(
        orchestrator, registry, sessions):
    await wait_for_method(registry, "demo.fail")
    session = (await sessions.CreateSession(
        sessions_pb2.CreateSessionRequest(user_id="carol"))).session
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await orchestrator.Dispatch(dispatch_request(
            "demo.fail", {"message": "the printer is on fire"}, session_id=session.session_id))
    assert info.value.code() not in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.OK)
    assert "the printer is on fire" in info.value.details()
    assert "Traceback" not in info.value.details()
    history = await sessions.ListSessionExecutions(
        sessions_pb2.ListSessionExecutionsRequest(session_id=session.session_id))
    assert history.executions[0].status == sessions_pb2.Execution.STATUS_FAILED
    assert "the printer is on fire" in history.executions[0].error


async def test_dispatch_into_an_unknown_session_executes_nothing(orchestrator, registry):
    await wait_for_method(registry, "casefile.create")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await orchestrator.Dispatch(dispatch_request(
            "casefile.create", {"title": "x"}, session_id="nope"))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


async def test_callers_deadline_bounds_a_slow_method(orchestrator, registry):
    await wait_for_method(registry, "demo.sleep")
    started = time.monotonic()
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await orchestrator.Dispatch(dispatch_request("demo.sleep", {"seconds": 5}), timeout=0.5)
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 2


async def test_directive_timeout_bounds_a_slow_method(orchestrator, registry):
    await wait_for_method(registry, "demo.sleep")
    started = time.monotonic()
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await orchestrator.Dispatch(dispatch_request(
            "demo.sleep", {"seconds": 5},
            directives=orchestrator_pb2.Directives(timeout=seconds_to_duration(0.3))), timeout=5)
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 2


async def test_the_sdk_gives_a_dispatch_without_a_timeout_the_methods_own(platform, registry):
    await wait_for_method(registry, "demo.sleep")
    # A client whose default deadline (1 s) is shorter than the call: not applied to it.
    async with OrchestratorClient(platform.addrs["orchestrator"], timeout=1.0) as client:
        reply = await client.dispatch("demo.sleep", {"seconds": 1.5})
        assert struct_to_dict(reply.result)["slept"] > 1.0  # past the client default
        with pytest.raises(ValueError, match="timeout must be a number of seconds, 0 or more"):
            await client.dispatch("demo.sleep", {"seconds": 1}, timeout=-1)
