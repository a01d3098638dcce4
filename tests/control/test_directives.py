"""Directives: dry_run executes nothing; idempotency_key executes once."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from baton.orchestrator.v1 import audit_pb2, orchestrator_pb2
from baton.sessions.v1 import sessions_pb2
from baton_core import dict_to_struct, from_rpc_error, struct_to_dict

from .conftest import put_policy, until


def request(operation: str, value: str = "v", session_id: str = "",
            **directives) -> orchestrator_pb2.DispatchRequest:
    return orchestrator_pb2.DispatchRequest(
        operation=operation, params=dict_to_struct({"value": value}), session_id=session_id,
        directives=orchestrator_pb2.Directives(**directives))


async def test_dry_run_validates_and_runs_pre_hooks_but_executes_and_records_nothing(
        control, probe, hook_servers, admin):
    p = probe.prefix
    await hook_servers(f"{p}-check", "pre")
    await hook_servers(f"{p}-watch", "post")
    await put_policy(control, admin, name=f"{p}-dry", pattern=probe.echo,
                     hooks=["metrics", "audit", "session_lifecycle", f"{p}-check",
                            f"{p}-watch"])
    session = (await control.sessions.CreateSession(
        sessions_pb2.CreateSessionRequest(user_id="alice"), metadata=admin)).session

    reply = await control.a.dispatch.Dispatch(
        request(probe.echo, session_id=session.session_id, dry_run=True), metadata=admin)
    assert reply.metadata.dry_run and not reply.metadata.attempts
    assert list(reply.metadata.hooks_run) == [f"{p}-check"]  # the post-hooks did not run
    assert struct_to_dict(reply.result) == {}
    assert probe.calls["echo"] == 0
    assert hook_servers.journal == [(f"{p}-check", "pre", probe.echo)]  # no post-hook

    with pytest.raises(grpc.aio.AioRpcError) as caught:  # validation still applies
        await control.a.dispatch.Dispatch(orchestrator_pb2.DispatchRequest(
            operation=probe.echo, params=dict_to_struct({"value": 5}),
            directives=orchestrator_pb2.Directives(dry_run=True)), metadata=admin)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    history = await control.sessions.ListSessionExecutions(
        sessions_pb2.ListSessionExecutionsRequest(session_id=session.session_id),
        metadata=admin)
    assert list(history.executions) == []
    records = await control.a.audit.ListAuditRecords(audit_pb2.ListAuditRecordsRequest(
        action="dispatch", entity=probe.echo), metadata=admin)
    assert list(records.records) == []


async def test_repeated_idempotency_key_returns_the_first_result_without_executing(
        control, probe, admin, auth_keys):
    key = f"{probe.prefix}-key"
    first = await control.a.dispatch.Dispatch(request(probe.echo, idempotency_key=key),
                                              metadata=admin)
    again = await control.b.dispatch.Dispatch(request(probe.echo, idempotency_key=key),
                                              metadata=admin)
    assert probe.calls["echo"] == 1
    assert not first.metadata.replayed and again.metadata.replayed
    assert again.result == first.result
    assert again.metadata.execution_id == first.metadata.execution_id

    with pytest.raises(grpc.aio.AioRpcError) as caught:  # same key, other params
        await control.a.dispatch.Dispatch(request(probe.echo, "other", idempotency_key=key),
                                          metadata=admin)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert from_rpc_error(caught.value).reason == "IDEMPOTENCY_KEY_REUSED"

    # Another actor's key is another key, to the worker too (it dedupes by key).
    await control.a.dispatch.Dispatch(request(probe.echo, idempotency_key=key),
                                      metadata=auth_keys.bearer("d/ave", ["user"]))
    assert probe.calls["echo"] == 2
    first_key, dave_key = probe.keys
    assert first_key.endswith(f"/{key}") and dave_key == f"d%2Fave/{key}"


async def test_a_repeat_while_the_first_still_runs_is_refused(control, probe, admin):
    slow = orchestrator_pb2.DispatchRequest(
        operation=probe.sleep, params=dict_to_struct({"seconds": 0.5}),
        directives=orchestrator_pb2.Directives(idempotency_key=f"{probe.prefix}-race"))
    first = asyncio.ensure_future(control.a.dispatch.Dispatch(slow, metadata=admin))

    async def running() -> bool:
        return probe.calls["sleep"] == 1

    await until(running, what="the first call executes")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await control.b.dispatch.Dispatch(slow, metadata=admin)
    assert caught.value.code() == grpc.StatusCode.ABORTED
    await first
    assert (await control.b.dispatch.Dispatch(slow, metadata=admin)).metadata.replayed
    assert probe.calls["sleep"] == 1


async def test_a_failed_execution_releases_its_idempotency_key(control, probe, admin):
    key = f"{probe.prefix}-fails"
    probe.failing = True
    with pytest.raises(grpc.aio.AioRpcError):
        await control.a.dispatch.Dispatch(request(probe.echo, idempotency_key=key),
                                          metadata=admin)
    probe.failing = False
    reply = await control.a.dispatch.Dispatch(request(probe.echo, idempotency_key=key),
                                              metadata=admin)
    assert not reply.metadata.replayed and probe.calls["echo"] == 2


async def test_an_idempotency_key_longer_than_a_stored_one_is_refused_unexecuted(
        control, probe, admin):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await control.a.dispatch.Dispatch(request(probe.echo, idempotency_key="k" * 256),
                                          metadata=admin)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in from_rpc_error(caught.value).violations] == [
        "directives.idempotency_key"]
    assert probe.calls["echo"] == 0
    reply = await control.a.dispatch.Dispatch(request(probe.echo, idempotency_key="k" * 255),
                                              metadata=admin)
    assert probe.calls["echo"] == 1 and not reply.metadata.replayed


async def test_params_holding_nan_are_refused_unexecuted(control, probe, admin):
    params = dict_to_struct({"value": "v"})
    params.fields["extra"].number_value = float("nan")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await control.a.dispatch.Dispatch(orchestrator_pb2.DispatchRequest(
            operation=probe.echo, params=params), metadata=admin)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert from_rpc_error(caught.value).violations == [("params.extra", "nan is not a JSON number")]
    assert probe.calls["echo"] == 0
