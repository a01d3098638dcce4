"""External hooks: order, rejection, fail_closed and fail_open, skip_hooks."""

from __future__ import annotations

import time

import grpc
import httpx
import pytest
from google.protobuf import duration_pb2

from baton.orchestrator.v1 import audit_pb2, hooks_pb2
from baton_core import from_rpc_error, struct_to_dict

from .conftest import BUILTINS, dispatch_request, put_policy, until
from .hook_server import Behaviour


async def _true(value: bool) -> bool:
    return value


async def test_hooks_run_in_the_order_list_hooks_shows_and_pass_context_on(
        control, probe, hook_servers, admin):
    p = probe.prefix
    first = await hook_servers(f"{p}-first", "pre", Behaviour(context={"tenant": "t1"}),
                               order=10)
    second = await hook_servers(f"{p}-second", "pre", Behaviour(context={"checked": True}),
                                order=20)
    await hook_servers(f"{p}-after", "post", order=5)
    await put_policy(control, admin, name=f"{p}-hooks", pattern=probe.echo,
                     hooks=[*BUILTINS, f"{p}-second", f"{p}-after", f"{p}-first"])

    listed = (await control.b.hooks.ListHooks(hooks_pb2.ListHooksRequest(),
                                              metadata=admin)).hooks
    names = [h.name for h in listed]
    ours = [n for n in names if n.startswith(p) or n in BUILTINS]
    assert ours == [f"{p}-first", f"{p}-second", f"{p}-after", "metrics", "audit",
                    "session_lifecycle"]

    reply = await control.b.dispatch.Dispatch(dispatch_request(probe.echo), metadata=admin)
    assert list(reply.metadata.hooks_run) == [f"{p}-first", f"{p}-second", f"{p}-after",
                                              "metrics", "audit", "session_lifecycle"]
    # External post-hooks run after the caller is answered, still in order.
    await until(lambda: _true(len(hook_servers.journal) == 3), what="the post-hook ran")
    assert hook_servers.journal == [(f"{p}-first", "pre", probe.echo),
                                    (f"{p}-second", "pre", probe.echo),
                                    (f"{p}-after", "post", probe.echo)]
    # The second pre-hook saw what the first added; the worker saw both.
    assert struct_to_dict(second.seen[0].call.context) == {"tenant": "t1"}
    assert struct_to_dict(reply.result)["hook_context"] == {"tenant": "t1", "checked": True}
    assert first.seen[0].call.actor == "alice"


async def test_metrics_count_executions_by_operation_and_outcome(control, probe, admin):
    await control.a.dispatch.Dispatch(dispatch_request(probe.echo), metadata=admin)
    probe.failing = True
    with pytest.raises(grpc.aio.AioRpcError):
        await control.a.dispatch.Dispatch(dispatch_request(probe.echo), metadata=admin)
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"http://127.0.0.1:{control.metrics_port}/metrics")).text
    for outcome in ("OK", "UNAVAILABLE"):
        labels = f'operation="{probe.echo}",outcome="{outcome}"'
        assert f"baton_dispatch_total{{{labels}}} 1.0" in text
        assert f"baton_dispatch_seconds_count{{{labels}}} 1.0" in text


async def test_post_hook_sees_the_result(control, probe, hook_servers, admin):
    p = probe.prefix
    after = await hook_servers(f"{p}-after", "post")
    await put_policy(control, admin, name=f"{p}-post", pattern=probe.echo,
                     hooks=[*BUILTINS, f"{p}-after"])
    await control.a.dispatch.Dispatch(dispatch_request(probe.echo), metadata=admin)
    await until(lambda: _true(bool(after.seen)), what="the post-hook ran")
    seen = after.seen[0]
    assert struct_to_dict(seen.result)["value"] == "v"
    assert seen.call.operation == probe.echo and seen.duration.ToNanoseconds() > 0


@pytest.mark.parametrize("rejection", ["PERMISSION_DENIED", "FAILED_PRECONDITION"])
async def test_a_rejecting_pre_hook_blocks_the_call_with_its_reason(
        control, probe, hook_servers, admin, rejection):
    p = probe.prefix
    await hook_servers(f"{p}-gate", "pre",
                       Behaviour(reject=rejection, reason="casefile is frozen"))
    await put_policy(control, admin, name=f"{p}-gate", pattern=probe.echo,
                     hooks=[*BUILTINS, f"{p}-gate"])
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await control.a.dispatch.Dispatch(dispatch_request(probe.echo), metadata=admin)
    assert caught.value.code() == getattr(grpc.StatusCode, rejection)
    assert caught.value.details() == "casefile is frozen"
    assert from_rpc_error(caught.value).metadata["hook"] == f"{p}-gate"
    assert probe.calls["echo"] == 0

    async def audited() -> bool:  # the refused call is on record, as not executed
        records = (await control.a.audit.ListAuditRecords(audit_pb2.ListAuditRecordsRequest(
            action="dispatch", entity=probe.echo), metadata=admin)).records
        return [(r.outcome, struct_to_dict(r.changes)["executed"]) for r in records] == [
            (rejection, False)]

    await until(audited, what="the refused dispatch is audited")


async def test_a_failing_fail_closed_hook_blocks_the_call(control, probe, hook_servers, admin):
    p = probe.prefix
    await hook_servers(f"{p}-strict", "pre", Behaviour(sleep=2.0),
                       failure_mode=hooks_pb2.Hook.FAILURE_MODE_FAIL_CLOSED,
                       timeout=duration_pb2.Duration(nanos=200_000_000))
    await put_policy(control, admin, name=f"{p}-strict", pattern=probe.echo,
                     hooks=[*BUILTINS, f"{p}-strict"])
    started = time.monotonic()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await control.a.dispatch.Dispatch(dispatch_request(probe.echo), metadata=admin)
    assert time.monotonic() - started < 1.5
    error = from_rpc_error(caught.value)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert error.reason == "HOOK_FAILED" and error.metadata["hook"] == f"{p}-strict"
    # One readable line: the hook call's status, not the RPC error's repr.
    assert error.message.startswith(f"pre-hook {p}-strict failed (DEADLINE_EXCEEDED: ")
    assert error.message.endswith(") and fails closed") and "\n" not in error.message
    assert "AioRpcError" not in error.message
    assert probe.calls["echo"] == 0


async def test_a_fail_open_hook_timing_out_does_not_block(control, probe, hook_servers, admin):
    p = probe.prefix
    await hook_servers(f"{p}-lenient", "pre", Behaviour(sleep=2.0),
                       failure_mode=hooks_pb2.Hook.FAILURE_MODE_FAIL_OPEN,
                       timeout=duration_pb2.Duration(nanos=200_000_000))
    await put_policy(control, admin, name=f"{p}-lenient", pattern=probe.echo,
                     hooks=[*BUILTINS, f"{p}-lenient"])
    started = time.monotonic()
    reply = await control.a.dispatch.Dispatch(dispatch_request(probe.echo), metadata=admin)
    assert time.monotonic() - started < 1.5
    assert struct_to_dict(reply.result)["value"] == "v"
    assert f"{p}-lenient" in reply.metadata.hooks_run
    assert probe.calls["echo"] == 1


async def test_skip_hooks_skips_only_what_policy_and_hook_allow(
        control, probe, hook_servers, admin):
    p = probe.prefix
    await hook_servers(f"{p}-optional", "pre", skippable=True)
    await hook_servers(f"{p}-required", "pre", skippable=True)
    await put_policy(control, admin, name=f"{p}-skips", pattern=probe.echo,
                     hooks=[*BUILTINS, f"{p}-optional", f"{p}-required"],
                     skippable_hooks=[f"{p}-optional", "audit"])
    reply = await control.a.dispatch.Dispatch(dispatch_request(
        probe.echo, skip_hooks=[f"{p}-optional", f"{p}-required", "audit"]), metadata=admin)
    # optional: skippable by hook and policy; required: the policy does not list it;
    # audit: built-in and never skippable.
    assert f"{p}-optional" not in reply.metadata.hooks_run
    assert f"{p}-required" in reply.metadata.hooks_run
    assert "audit" in reply.metadata.hooks_run


async def test_hook_registration_is_validated_and_builtins_are_protected(control, admin):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await control.a.hooks.RegisterHook(hooks_pb2.RegisterHookRequest(hook=hooks_pb2.Hook(
            name="Bad Name", stage=hooks_pb2.Hook.STAGE_PRE, address="nowhere")),
            metadata=admin)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = {f for f, _ in from_rpc_error(caught.value).violations}
    assert fields == {"hook.name", "hook.address"}
    for call in (control.a.hooks.DeleteHook(hooks_pb2.DeleteHookRequest(name="audit"),
                                            metadata=admin),
                 control.a.hooks.RegisterHook(hooks_pb2.RegisterHookRequest(hook=hooks_pb2.Hook(
                     name="metrics", stage=hooks_pb2.Hook.STAGE_PRE,
                     address="127.0.0.1:1")), metadata=admin)):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await control.a.hooks.GetHook(hooks_pb2.GetHookRequest(name="no-such-hook"),
                                      metadata=admin)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
