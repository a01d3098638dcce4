"""External hooks that misbehave: answers that mean nothing, slowness against the
execution's deadline and the caller's."""

from __future__ import annotations

import time

import grpc
import pytest
from google.protobuf import duration_pb2

from baton.hook.v1 import hook_pb2
from baton.orchestrator.v1 import hooks_pb2
from baton_core import DeadlineExceeded, from_rpc_error, struct_to_dict
from baton_orchestrator._external_hooks import ExternalHook, HookSpec
from baton_orchestrator._hooks import FAIL_CLOSED, PRE, HookChain, HookInput

from .conftest import BUILTINS, dispatch_request, put_policy, until
from .hook_server import Behaviour, serve_hook

GARBAGE = 7  # no BeforeDispatchResponse.Decision has this number


async def test_a_fail_closed_hook_answering_an_unknown_decision_blocks_the_call(
        control, probe, hook_servers, admin):
    p = probe.prefix
    await hook_servers(f"{p}-garbled", "pre", Behaviour(decision=GARBAGE),
                       failure_mode=hooks_pb2.Hook.FAILURE_MODE_FAIL_CLOSED)
    await put_policy(control, admin, name=f"{p}-garbled", pattern=probe.echo,
                     hooks=[*BUILTINS, f"{p}-garbled"])
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await control.a.dispatch.Dispatch(dispatch_request(probe.echo), metadata=admin)
    error = from_rpc_error(caught.value)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert error.reason == "HOOK_FAILED" and error.metadata["hook"] == f"{p}-garbled"
    assert f"decision {GARBAGE}" in error.message
    assert probe.calls["echo"] == 0


async def test_a_fail_open_hook_answering_an_unknown_decision_is_passed_over(
        control, probe, hook_servers, admin):
    p = probe.prefix
    await hook_servers(f"{p}-garbled", "pre",
                       Behaviour(decision=GARBAGE, context={"trusted": True}),
                       failure_mode=hooks_pb2.Hook.FAILURE_MODE_FAIL_OPEN)
    await put_policy(control, admin, name=f"{p}-garbled", pattern=probe.echo,
                     hooks=[*BUILTINS, f"{p}-garbled"])
    reply = await control.a.dispatch.Dispatch(dispatch_request(probe.echo), metadata=admin)
    # Passed over as failed: what it answered along with the garbage is not taken.
    assert struct_to_dict(reply.result)["hook_context"] == {}
    assert probe.calls["echo"] == 1


async def test_a_slow_post_hook_does_not_hold_the_answer_past_the_callers_deadline(
        control, probe, hook_servers, admin):
    p = probe.prefix
    after = await hook_servers(f"{p}-slow-after", "post", Behaviour(sleep=2.0),
                               timeout=duration_pb2.Duration(seconds=5))
    await put_policy(control, admin, name=f"{p}-slow-after", pattern=probe.echo,
                     hooks=[*BUILTINS, f"{p}-slow-after"])
    started = time.monotonic()
    reply = await control.a.dispatch.Dispatch(dispatch_request(probe.echo), metadata=admin,
                                              timeout=1.0)
    assert time.monotonic() - started < 1.0
    assert struct_to_dict(reply.result)["value"] == "v"
    assert f"{p}-slow-after" in reply.metadata.hooks_run

    async def called() -> bool:
        return bool(after.seen)

    await until(called, what="the post-hook was called all the same")
    assert struct_to_dict(after.seen[0].result)["value"] == "v"


async def test_dispatch_with_a_slow_pre_hook_ends_at_its_own_timeout(
        control, probe, hook_servers, admin):
    p = probe.prefix
    await hook_servers(f"{p}-slow-before", "pre", Behaviour(sleep=2.0),
                       failure_mode=hooks_pb2.Hook.FAILURE_MODE_FAIL_CLOSED,
                       timeout=duration_pb2.Duration(seconds=5))
    await put_policy(control, admin, name=f"{p}-slow-before", pattern=probe.echo,
                     hooks=[*BUILTINS, f"{p}-slow-before"])
    started = time.monotonic()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await control.a.dispatch.Dispatch(
            dispatch_request(probe.echo, timeout=duration_pb2.Duration(nanos=500_000_000)),
            metadata=admin)
    assert time.monotonic() - started < 1.5
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert from_rpc_error(caught.value).reason == "HOOK_DEADLINE_EXCEEDED"
    assert probe.calls["echo"] == 0


@pytest.fixture
async def slow_pre_hook():
    """A real hook process that takes 2 s to answer, as a fail_closed pre-hook whose
    own timeout (5 s) is longer than the executions it runs for."""
    server, _ = await serve_hook("slow-pre", [], Behaviour(sleep=2.0))
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    spec = HookSpec(name="slow-pre", stage=PRE, address=f"127.0.0.1:{server.port}",
                    failure_mode=FAIL_CLOSED, timeout=5.0)
    yield ExternalHook(spec, channel, None)
    await channel.close()
    await server.stop(0)


def _call(deadline_in: float) -> HookInput:
    return HookInput(operation="demo.echo", params={}, execution_id="ex_1",
                     deadline=time.monotonic() + deadline_in)


async def test_a_pre_hook_is_cut_at_the_executions_deadline(slow_pre_hook):
    started = time.monotonic()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await slow_pre_hook.pre(_call(0.3))
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 1.0


async def test_a_chain_whose_deadline_passes_says_so_and_starts_no_hook(slow_pre_hook):
    chain = HookChain([slow_pre_hook])
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded) as caught:
        await chain.pre(_call(0.3))
    assert time.monotonic() - started < 1.0
    assert caught.value.reason == "HOOK_DEADLINE_EXCEEDED"
    assert "passed during pre-hook slow-pre" in caught.value.message
    with pytest.raises(DeadlineExceeded, match="passed before pre-hook slow-pre"):
        await chain.pre(_call(-1.0))


def test_the_contract_has_no_decision_numbered_like_the_garbage():
    assert GARBAGE not in hook_pb2.BeforeDispatchResponse.Decision.values()
