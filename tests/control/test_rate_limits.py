"""Rate limits and concurrency caps hold across two orchestrator processes."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from baton.orchestrator.v1 import orchestrator_pb2, policies_pb2
from baton_core import dict_to_struct, from_rpc_error

from .conftest import put_policy


def echo(probe, value="v") -> orchestrator_pb2.DispatchRequest:
    return orchestrator_pb2.DispatchRequest(operation=probe.echo,
                                            params=dict_to_struct({"value": value}))


async def test_an_actors_rate_limit_is_shared_by_both_replicas(control, probe, admin, auth_keys):
    p = probe.prefix
    await put_policy(control, admin, name=f"{p}-limited", pattern=probe.echo,
                     actor_rate_limit=policies_pb2.RateLimit(requests_per_second=0.2, burst=3))
    erin = auth_keys.bearer(f"{p}-erin", ["user"])
    for replica in (control.a, control.b, control.a):  # the burst, spread over replicas
        await replica.dispatch.Dispatch(echo(probe), metadata=erin)
    for replica in (control.b, control.a):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await replica.dispatch.Dispatch(echo(probe), metadata=erin)
        error = from_rpc_error(caught.value)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert error.reason == "RATE_LIMITED"
        assert 0 < error.retry_after <= 5.0  # RetryInfo: one token at 0.2/s
    assert probe.calls["echo"] == 3
    # Each actor has a bucket of their own.
    await control.b.dispatch.Dispatch(echo(probe), metadata=auth_keys.bearer(f"{p}-frank",
                                                                             ["user"]))
    assert probe.calls["echo"] == 4


async def test_an_operations_rate_limit_covers_every_caller(control, probe, admin, auth_keys):
    p = probe.prefix
    await put_policy(control, admin, name=f"{p}-op-limited", pattern=probe.echo,
                     operation_rate_limit=policies_pb2.RateLimit(requests_per_second=0.1,
                                                                 burst=2))
    await control.a.dispatch.Dispatch(echo(probe), metadata=auth_keys.bearer("u1", ["user"]))
    await control.b.dispatch.Dispatch(echo(probe), metadata=auth_keys.bearer("u2", ["user"]))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await control.a.dispatch.Dispatch(echo(probe), metadata=auth_keys.bearer("u3",
                                                                                 ["user"]))
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert probe.calls["echo"] == 2


async def test_max_concurrency_is_shared_by_both_replicas(control, probe, admin):
    p = probe.prefix
    await put_policy(control, admin, name=f"{p}-one-at-a-time", pattern=probe.sleep,
                     max_concurrency=1)
    slow = orchestrator_pb2.DispatchRequest(operation=probe.sleep,
                                            params=dict_to_struct({"seconds": 0.5}))
    first = asyncio.ensure_future(control.a.dispatch.Dispatch(slow, metadata=admin))
    while probe.calls["sleep"] == 0:
        await asyncio.sleep(0.02)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await control.b.dispatch.Dispatch(slow, metadata=admin)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert from_rpc_error(caught.value).reason == "CONCURRENCY_LIMITED"
    await first
    await control.b.dispatch.Dispatch(slow, metadata=admin)  # the slot is free again
    assert probe.calls["sleep"] == 2
