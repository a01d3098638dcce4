"""Two deployments behind one Redis: the orchestrator's keys are scoped to its
SQL database, so replicas of one database share them and another never does."""

from __future__ import annotations

import asyncio

import grpc
import pytest
import redis.asyncio as aioredis
from google.protobuf import duration_pb2

from baton.orchestrator.v1 import circuit_breakers_pb2 as cb
from baton.orchestrator.v1 import policies_pb2
from baton.registry.v1 import registry_pb2
from baton_cli._process import ChildProcess
from baton_core import constants as c
from baton_core import free_port

from .conftest import Orchestrator, until
from .test_breakers import breaker, echo, failing_call
from .test_directives import request

NO_RETRY = registry_pb2.RetryPolicy(strategy=registry_pb2.RetryPolicy.STRATEGY_NONE)


@pytest.fixture
async def other(control, databases, redis_url, auth_keys, tmp_path, probe, admin):
    """An orchestrator of another deployment: its own database, the same Redis
    (and, for the test's convenience, the same registry and worker)."""
    address = f"127.0.0.1:{free_port()}"
    env = {**auth_keys.env(), c.ENV_DATA_DIR: str(tmp_path), c.ENV_REDIS_URL: redis_url,
           c.ENV_REGISTRY_ADDR: control.addrs["registry"],
           c.ENV_SESSIONS_ADDR: control.addrs["sessions"], c.ENV_ORCHESTRATOR_ADDR: address,
           c.ENV_LISTEN: address, c.ENV_DATABASE_URL: await databases.new_url_async("other")}
    child = ChildProcess.service("orchestrator-other", "orchestrator", env,
                                 tmp_path / "orchestrator-other.log", address)
    await asyncio.to_thread(child.start)
    channel = grpc.aio.insecure_channel(address)
    replica = Orchestrator(address, channel)

    async def known() -> bool:
        reply = await replica.policies.ExplainPolicy(
            policies_pb2.ExplainPolicyRequest(operation=probe.echo), metadata=admin)
        return reply.method_registered

    try:
        await until(known, what="the other deployment knows the probe's methods")
        yield replica
    finally:
        await channel.close()
        await asyncio.to_thread(child.stop)


async def test_an_idempotency_key_of_another_database_is_not_replayed(
        control, probe, other, admin, redis_url):
    key = f"{probe.prefix}-key"
    first = await control.a.dispatch.Dispatch(request(probe.echo, idempotency_key=key),
                                              metadata=admin)
    replica = await control.b.dispatch.Dispatch(request(probe.echo, idempotency_key=key),
                                                metadata=admin)
    assert replica.metadata.replayed and probe.calls["echo"] == 1  # one deployment

    elsewhere = await other.dispatch.Dispatch(request(probe.echo, idempotency_key=key),
                                              metadata=admin)
    assert not elsewhere.metadata.replayed
    assert elsewhere.metadata.execution_id != first.metadata.execution_id
    assert probe.calls["echo"] == 2
    again = await other.dispatch.Dispatch(request(probe.echo, idempotency_key=key),
                                          metadata=admin)
    assert again.metadata.replayed
    assert again.metadata.execution_id == elsewhere.metadata.execution_id

    client = aioredis.from_url(redis_url)
    try:
        keys = sorted([k.decode() async for k in client.scan_iter(match=f"baton:*:{key}")])
    finally:
        await client.aclose()
    assert len(keys) == 2, keys  # one record per database, under its store id
    stores = {k.split(":")[1] for k in keys}
    assert len(stores) == 2 and all(k.split(":")[2] == "idem" for k in keys)


async def test_a_breaker_opened_by_one_deployment_stays_closed_for_another(
        control, probe, other, admin):
    p = probe.prefix
    config = cb.CircuitBreakerConfig(failure_threshold=2,
                                     open_timeout=duration_pb2.Duration(seconds=30),
                                     half_open_max_calls=1)
    policy = policies_pb2.Policy(name=f"{p}-guarded", pattern=f"{p}.*",
                                 retry_policy=NO_RETRY, circuit_breaker=config)
    for replica in (control.a, other):  # the same policy in both databases
        await replica.policies.CreatePolicy(policies_pb2.CreatePolicyRequest(policy=policy),
                                            metadata=admin)
    endpoint = probe.worker.address
    probe.failing = True
    for _ in range(2):
        await failing_call(control.a, probe, admin)
    assert (await breaker(control.b, endpoint, admin)).state == cb.CircuitBreaker.STATE_OPEN

    probe.failing = False
    assert (await breaker(other, endpoint, admin)).state == cb.CircuitBreaker.STATE_CLOSED
    await other.dispatch.Dispatch(echo(probe), metadata=admin)  # reaches the worker
    assert probe.calls["echo"] == 3
    assert (await breaker(control.a, endpoint, admin)).state == cb.CircuitBreaker.STATE_OPEN
