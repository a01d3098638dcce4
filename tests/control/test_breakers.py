"""Circuit breakers: open on failures, fail fast, recover through half-open."""

from __future__ import annotations

import time

import grpc
import pytest
from google.protobuf import duration_pb2, field_mask_pb2

from baton.orchestrator.v1 import circuit_breakers_pb2 as cb
from baton.orchestrator.v1 import orchestrator_pb2, policies_pb2
from baton.registry.v1 import registry_pb2
from baton_core import dict_to_struct, from_rpc_error

from .conftest import put_policy, until

NO_RETRY = registry_pb2.RetryPolicy(strategy=registry_pb2.RetryPolicy.STRATEGY_NONE)


def echo(probe) -> orchestrator_pb2.DispatchRequest:
    return orchestrator_pb2.DispatchRequest(operation=probe.echo,
                                            params=dict_to_struct({"value": "v"}))


async def breaker(replica, endpoint: str, admin) -> cb.CircuitBreaker:
    return (await replica.breakers.GetCircuitBreaker(
        cb.GetCircuitBreakerRequest(endpoint=endpoint), metadata=admin)).circuit_breaker


async def failing_call(replica, probe, admin) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await replica.dispatch.Dispatch(echo(probe), metadata=admin)
    return caught.value


async def test_breaker_opens_fails_fast_and_recovers_through_half_open(control, probe, admin):
    p = probe.prefix
    endpoint = probe.worker.address
    await put_policy(control, admin, name=f"{p}-guarded", pattern=f"{p}.*",
                     retry_policy=NO_RETRY, circuit_breaker=cb.CircuitBreakerConfig(
                         failure_threshold=2, open_timeout=duration_pb2.Duration(seconds=1),
                         half_open_max_calls=1))
    probe.failing = True
    for replica in (control.a, control.b):  # failures counted across replicas
        error = await failing_call(replica, probe, admin)
        assert from_rpc_error(error).reason != "CIRCUIT_OPEN"
    state = await breaker(control.a, endpoint, admin)
    assert state.state == cb.CircuitBreaker.STATE_OPEN
    assert state.config.failure_threshold == 2

    started = time.monotonic()
    error = await failing_call(control.b, probe, admin)
    details = from_rpc_error(error)
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert details.reason == "CIRCUIT_OPEN" and details.metadata["endpoint"] == endpoint
    assert 0 < details.retry_after <= 1.0
    assert time.monotonic() - started < 0.5
    assert probe.calls["echo"] == 2  # the worker was not called

    async def half_open() -> bool:
        return (await breaker(control.b, endpoint, admin)).state == \
            cb.CircuitBreaker.STATE_HALF_OPEN

    await until(half_open, timeout=3, what="the breaker turns half-open")
    # A failing trial call opens it again.
    await failing_call(control.a, probe, admin)
    assert probe.calls["echo"] == 3
    assert (await breaker(control.a, endpoint, admin)).state == cb.CircuitBreaker.STATE_OPEN
    await until(half_open, timeout=3, what="the breaker turns half-open again")
    probe.failing = False
    await control.b.dispatch.Dispatch(echo(probe), metadata=admin)  # the trial succeeds
    assert (await breaker(control.a, endpoint, admin)).state == cb.CircuitBreaker.STATE_CLOSED
    await control.a.dispatch.Dispatch(echo(probe), metadata=admin)
    assert probe.calls["echo"] == 5

    listed = await control.b.breakers.ListCircuitBreakers(cb.ListCircuitBreakersRequest(),
                                                          metadata=admin)
    assert endpoint in [b.endpoint for b in listed.circuit_breakers]


async def test_config_override_and_reset(control, probe, admin):
    endpoint = probe.worker.address
    updated = (await control.a.breakers.UpdateCircuitBreakerConfig(
        cb.UpdateCircuitBreakerConfigRequest(
            endpoint=endpoint, config=cb.CircuitBreakerConfig(failure_threshold=1),
            update_mask=field_mask_pb2.FieldMask(paths=["failure_threshold"])),
        metadata=admin)).circuit_breaker
    assert updated.config_override and updated.config.failure_threshold == 1
    # ExplainPolicy shows the endpoint's own thresholds, not only the policy's.
    explained = await control.a.policies.ExplainPolicy(
        policies_pb2.ExplainPolicyRequest(operation=probe.echo), metadata=admin)
    ours = [b for b in explained.endpoint_breakers if b.endpoint == endpoint]
    assert len(ours) == 1 and ours[0].endpoint_override
    assert ours[0].config.failure_threshold == 1

    async def b_knows() -> bool:
        return (await breaker(control.b, endpoint, admin)).config_override

    await until(b_knows, what="replica B applies the override")
    probe.failing = True
    await failing_call(control.b, probe, admin)  # no policy breaker: the override applies
    assert (await breaker(control.a, endpoint, admin)).state == cb.CircuitBreaker.STATE_OPEN
    assert from_rpc_error(await failing_call(control.a, probe, admin)).reason == "CIRCUIT_OPEN"

    probe.failing = False
    reset = (await control.a.breakers.ResetCircuitBreaker(
        cb.ResetCircuitBreakerRequest(endpoint=endpoint, clear_config=True),
        metadata=admin)).circuit_breaker
    assert reset.state == cb.CircuitBreaker.STATE_CLOSED and not reset.config_override
    explained = await control.a.policies.ExplainPolicy(
        policies_pb2.ExplainPolicyRequest(operation=probe.echo), metadata=admin)
    assert [(b.endpoint, b.endpoint_override, b.HasField("config"))
            for b in explained.endpoint_breakers if b.endpoint == endpoint] == [
        (endpoint, False, explained.HasField("circuit_breaker"))]
    assert not reset.HasField("config")  # not the override it just cleared
    await until(lambda: _no_override(control, endpoint, admin),
                what="replica B drops the override")
    await control.b.dispatch.Dispatch(echo(probe), metadata=admin)


async def _no_override(control, endpoint, admin) -> bool:
    return not (await breaker(control.b, endpoint, admin)).config_override


async def test_a_config_below_its_limits_is_refused_naming_each_field(control, probe, admin):
    endpoint = probe.worker.address
    cases = [
        (cb.CircuitBreakerConfig(failure_threshold=0), ["failure_threshold"],
         [("config.failure_threshold", "must be at least 1")]),
        (cb.CircuitBreakerConfig(failure_threshold=-1, half_open_max_calls=2,
                                 open_timeout=duration_pb2.Duration(seconds=-5)), [],
         [("config.failure_threshold", "must be at least 1"),
          ("config.open_timeout", "must be positive")]),
        (cb.CircuitBreakerConfig(), [],
         [("config", "set failure_threshold, open_timeout or half_open_max_calls")]),
    ]
    for config, paths, violations in cases:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await control.a.breakers.UpdateCircuitBreakerConfig(
                cb.UpdateCircuitBreakerConfigRequest(
                    endpoint=endpoint, config=config,
                    update_mask=field_mask_pb2.FieldMask(paths=paths)), metadata=admin)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert from_rpc_error(caught.value).violations == violations
    assert not (await breaker(control.a, endpoint, admin)).config_override  # nothing stored


@pytest.mark.parametrize("endpoint", ["a b:1", "ho\nst:1", "h" * 256 + ":1"])
async def test_an_endpoint_that_is_no_address_is_refused(control, admin, endpoint):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await control.a.breakers.UpdateCircuitBreakerConfig(
            cb.UpdateCircuitBreakerConfigRequest(
                endpoint=endpoint, config=cb.CircuitBreakerConfig(failure_threshold=3)),
            metadata=admin)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in from_rpc_error(caught.value).violations] == ["endpoint"]


async def test_a_name_refused_for_new_configs_can_still_be_reset(control, admin):
    # A config stored before endpoint names were checked must stay clearable.
    reset = (await control.a.breakers.ResetCircuitBreaker(
        cb.ResetCircuitBreakerRequest(endpoint="old name:1", clear_config=True),
        metadata=admin)).circuit_breaker
    assert reset.endpoint == "old name:1" and not reset.config_override


async def test_a_star_mask_replaces_the_whole_config_with_defaults_for_what_is_unset(
        control, admin):
    from baton_orchestrator._policies import BreakerConfig

    endpoint = "127.0.0.1:1"  # nothing serves there: only its config is looked at
    first = (await control.a.breakers.UpdateCircuitBreakerConfig(
        cb.UpdateCircuitBreakerConfigRequest(
            endpoint=endpoint, config=cb.CircuitBreakerConfig(
                failure_threshold=7, half_open_max_calls=4)), metadata=admin)).circuit_breaker
    assert (first.config.failure_threshold, first.config.half_open_max_calls) == (7, 4)
    replaced = (await control.a.breakers.UpdateCircuitBreakerConfig(
        cb.UpdateCircuitBreakerConfigRequest(
            endpoint=endpoint, config=cb.CircuitBreakerConfig(failure_threshold=2),
            update_mask=field_mask_pb2.FieldMask(paths=["*"])), metadata=admin)).circuit_breaker
    assert replaced.config.failure_threshold == 2
    assert replaced.config.half_open_max_calls == BreakerConfig().half_open_max_calls
    # A duration is replaced whole: 2.5 s then 10 s is 10 s, not 10.5.
    for seconds, nanos in ((2, 500_000_000), (10, 0)):
        timed = (await control.a.breakers.UpdateCircuitBreakerConfig(
            cb.UpdateCircuitBreakerConfigRequest(
                endpoint=endpoint, config=cb.CircuitBreakerConfig(
                    open_timeout=duration_pb2.Duration(seconds=seconds, nanos=nanos)),
                update_mask=field_mask_pb2.FieldMask(paths=["open_timeout"])),
            metadata=admin)).circuit_breaker
    assert (timed.config.open_timeout.seconds, timed.config.open_timeout.nanos) == (10, 0)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await control.a.breakers.UpdateCircuitBreakerConfig(
            cb.UpdateCircuitBreakerConfigRequest(
                endpoint=endpoint, config=cb.CircuitBreakerConfig(failure_threshold=2),
                update_mask=field_mask_pb2.FieldMask(paths=["*", "failure_threshold"])),
            metadata=admin)
    assert from_rpc_error(caught.value).reason == "INVALID_MASK"
    await control.a.breakers.ResetCircuitBreaker(cb.ResetCircuitBreakerRequest(
        endpoint=endpoint, clear_config=True), metadata=admin)
