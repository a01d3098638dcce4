"""Worker against a real registry: registration, leases kept by heartbeats, recovery."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from baton.registry.v1 import registry_pb2
from baton_core import (
    InvalidArgument,
    duration_to_seconds,
    free_port,
    struct_to_dict,
    timestamp_to_datetime,
)
from baton_sdk import MethodDefinition, Worker

from .conftest import registry_settings, start_registry
from .parcels import Parcel, Quote, quote

pytestmark = pytest.mark.timeout(20)

AVAILABLE = registry_pb2.Endpoint.STATE_AVAILABLE
UNAVAILABLE = registry_pb2.Endpoint.STATE_UNAVAILABLE


async def next_state(watch, name: str, states: set[int]) -> registry_pb2.Method:
    """The next watched version of `name` with an endpoint in one of `states`."""
    async for event in watch:
        if event.method.name == name and any(e.state in states for e in event.method.endpoints):
            return event.method
    raise AssertionError("watch ended")


async def test_registration_shows_the_method_and_its_endpoint(
        own_registry, start_worker, registry_client):
    worker = await start_worker([quote], registry_addr=own_registry, worker_id="w-1")
    got = await registry_client(own_registry).get_method("parcel.quote")
    assert got.version == "1.1.0" and got.domain == "parcel"
    assert got.description == "Prices a parcel."
    assert list(got.tags) == ["parcel", "pricing"]
    assert struct_to_dict(got.input_schema) == Parcel.model_json_schema()
    assert struct_to_dict(got.output_schema) == Quote.model_json_schema()
    assert duration_to_seconds(got.default_timeout) == 3.0
    assert got.retry_policy.max_attempts == 2 and got.idempotent
    [endpoint] = got.endpoints
    assert (endpoint.worker_id, endpoint.address, endpoint.state) == (
        "w-1", worker.address, AVAILABLE)


async def test_heartbeats_keep_the_lease_until_the_worker_stops(
        own_registry, start_worker, registry_client):
    client = registry_client(own_registry)
    worker = await start_worker([quote], registry_addr=own_registry, lease_ttl=0.6)
    first = (await client.get_method("parcel.quote")).endpoints[0].lease_expire_time
    # Three lease lengths: without heartbeats the sweeper would have let it lapse.
    await asyncio.sleep(1.8)
    [endpoint] = (await client.get_method("parcel.quote")).endpoints
    assert endpoint.state == AVAILABLE
    assert timestamp_to_datetime(endpoint.lease_expire_time) > timestamp_to_datetime(first)

    watch = client.watch_methods(domain="parcel")
    await worker.stop()
    lapsed = await next_state(watch, "parcel.quote", {UNAVAILABLE})
    assert lapsed.endpoints[0].address == worker.address
    await watch.aclose()


async def test_stopped_worker_ends_its_lease_at_once(own_registry, start_worker,
                                                     registry_client):
    # Until the lease ends, callers keep picking a draining worker, which refuses them.
    client = registry_client(own_registry)
    worker = await start_worker([quote], registry_addr=own_registry, lease_ttl=60)
    watch = client.watch_methods(domain="parcel")
    await next_state(watch, "parcel.quote", {AVAILABLE})
    await worker.stop()
    lapsed = await asyncio.wait_for(next_state(watch, "parcel.quote", {UNAVAILABLE}), 5)
    assert lapsed.endpoints[0].address == worker.address
    await watch.aclose()


async def test_worker_registers_again_what_the_registry_forgot(
        own_registry, start_worker, registry_client):
    client = registry_client(own_registry)
    await start_worker([quote], registry_addr=own_registry, lease_ttl=0.6)
    watch = client.watch_methods(domain="parcel")
    await next_state(watch, "parcel.quote", {AVAILABLE})
    await client.delete_method("parcel.quote")
    back = await next_state(watch, "parcel.quote", {AVAILABLE})
    assert back.name == "parcel.quote"
    await watch.aclose()


async def test_worker_started_before_the_registry_registers_once_it_is_up(
        database_url, redis_url, tmp_path, start_worker, registry_client):
    port = free_port()
    await start_worker([quote], registry_addr=f"127.0.0.1:{port}", lease_ttl=0.6)
    app, server, address = await start_registry(
        registry_settings(database_url, redis_url, tmp_path), listen=f"127.0.0.1:{port}")
    try:
        watch = registry_client(address).watch_methods()
        method_ = await next_state(watch, "parcel.quote", {AVAILABLE})
        assert method_.version == "1.1.0"
        await watch.aclose()
    finally:
        await server.stop(0)
        await app.stop()


async def test_rejected_registration_fails_start_and_frees_the_port(own_registry):
    broken = dataclasses.replace(MethodDefinition.from_callable(quote),
                                 input_schema={"type": 12})
    worker = Worker([broken], registry_addr=own_registry)
    with pytest.raises(InvalidArgument) as caught:
        await worker.start()
    assert caught.value.violations[0][0].startswith("method.input_schema")
    await worker.stop()


async def test_worker_is_an_async_context_manager_and_stop_is_safe_twice(own_registry):
    async with Worker([quote], registry_addr=own_registry) as worker:
        assert worker.address.startswith("127.0.0.1:")
    await worker.stop()


def test_worker_refuses_duplicate_or_missing_methods():
    with pytest.raises(ValueError, match="twice"):
        Worker([quote, quote])
    with pytest.raises(ValueError, match="at least one"):
        Worker([])


@pytest.mark.parametrize("interval", [-1.0, 0.0, 10.0, 30.0])
def test_worker_refuses_heartbeats_that_cannot_keep_the_lease(interval):
    # A negative interval beat the registry in a tight loop; one of lease_ttl or
    # more let the lease lapse between beats.
    with pytest.raises(ValueError, match="heartbeat_interval"):
        Worker([quote], lease_ttl=10.0, heartbeat_interval=interval)


async def test_a_worker_of_more_methods_than_one_heartbeat_names_beats_in_several(
        own_registry, registry_client):
    from baton_core import constants
    from baton_sdk._worker import _beat

    client = registry_client(own_registry)
    names = [f"many.m{i}" for i in range(constants.MAX_HEARTBEAT_METHODS + 1)]
    # Not registered: every name comes back unknown, from both heartbeats, none refused.
    unknown = await _beat(client, "w-many", "127.0.0.1:9", names, lease_ttl=5.0)
    assert sorted(unknown) == sorted(names)
