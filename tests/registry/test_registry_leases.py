"""Endpoint leases: registration, heartbeats, expiry by the sweeper, several workers."""

from __future__ import annotations

import datetime as dt

import grpc
import pytest

from baton.registry.v1 import registry_pb2 as pb
from baton_core import seconds_to_duration, utcnow
from baton_registry._constants import ENDPOINT_RETENTION
from baton_registry._db import Database
from baton_registry._leases import LeaseStore

from .builders import register, rpc_error
from .conftest import EVENT

pytestmark = pytest.mark.timeout(30)

AVAILABLE = pb.Endpoint.STATE_AVAILABLE
UNAVAILABLE = pb.Endpoint.STATE_UNAVAILABLE


def states(event: pb.WatchMethodsResponse) -> dict[str, int]:
    return {e.worker_id: e.state for e in event.method.endpoints}


async def test_registering_with_a_worker_records_an_available_endpoint(stub):
    before = utcnow()
    reply = await register(stub, "casefile.create", worker_id="w1", address="127.0.0.1:7001",
                           lease_ttl=30)
    [endpoint] = reply.method.endpoints
    assert (endpoint.worker_id, endpoint.address, endpoint.state) == (
        "w1", "127.0.0.1:7001", AVAILABLE)
    remaining = endpoint.lease_expire_time.ToDatetime(tzinfo=before.tzinfo) - before
    assert 29 < remaining.total_seconds() < 31


async def test_registering_without_a_worker_records_no_endpoint(stub):
    reply = await register(stub, "casefile.create")
    assert list(reply.method.endpoints) == []


async def test_lapsed_lease_makes_the_endpoint_unavailable_until_a_heartbeat(start_registry,
                                                                           open_watch):
    stub = (await start_registry(lease_ttl=0.5)).stub
    watch = await open_watch(stub)
    await watch.until_synced()
    await register(stub, "casefile.create", worker_id="w1", address="127.0.0.1:7001")
    assert states(await watch.next()) == {"w1": AVAILABLE}

    lapsed = await watch.until(lambda e: states(e) == {"w1": UNAVAILABLE})
    assert lapsed.type == EVENT.EVENT_TYPE_UPSERTED
    got = (await stub.GetMethod(pb.GetMethodRequest(name="casefile.create"))).method
    assert got.endpoints[0].state == UNAVAILABLE

    reply = await stub.Heartbeat(pb.HeartbeatRequest(worker_id="w1", address="127.0.0.1:7001"))
    assert list(reply.unknown_methods) == []
    revived = await watch.next()
    assert states(revived) == {"w1": AVAILABLE}
    assert revived.method.endpoints[0].lease_expire_time == reply.lease_expire_time


async def test_two_workers_serve_one_method_and_lapse_independently(start_registry,
                                                                    open_watch):
    stub = (await start_registry()).stub
    watch = await open_watch(stub)
    await watch.until_synced()
    await register(stub, "casefile.create", worker_id="w1", address="127.0.0.1:7001",
                   lease_ttl=0.5)
    reply = await register(stub, "casefile.create", worker_id="w2", address="127.0.0.1:7002",
                           lease_ttl=30)
    assert {e.worker_id: e.address for e in reply.method.endpoints} == {
        "w1": "127.0.0.1:7001", "w2": "127.0.0.1:7002"}

    lapsed = await watch.until(lambda e: states(e).get("w1") == UNAVAILABLE)
    assert states(lapsed) == {"w1": UNAVAILABLE, "w2": AVAILABLE}


async def test_heartbeat_renews_named_methods_and_reports_unknown_ones(stub):
    await register(stub, "casefile.create", worker_id="w1", address="127.0.0.1:7001",
                   lease_ttl=5)
    await register(stub, "casefile.get", worker_id="w1", address="127.0.0.1:7001", lease_ttl=5)
    reply = await stub.Heartbeat(pb.HeartbeatRequest(
        worker_id="w1", address="127.0.0.1:7001", method_names=["casefile.create", "nope.gone"],
        lease_ttl=seconds_to_duration(60)))
    assert list(reply.unknown_methods) == ["nope.gone"]

    async def expiry(name: str):
        got = (await stub.GetMethod(pb.GetMethodRequest(name=name))).method
        return got.endpoints[0].lease_expire_time

    assert await expiry("casefile.create") == reply.lease_expire_time
    assert (await expiry("casefile.get")).ToDatetime() < reply.lease_expire_time.ToDatetime()



async def test_a_heartbeat_never_attaches_a_worker_to_a_method_it_did_not_register(stub):
    await register(stub, "casefile.create", worker_id="w1", address="127.0.0.1:7001",
                   lease_ttl=5)
    reply = await stub.Heartbeat(pb.HeartbeatRequest(
        worker_id="intruder", address="127.0.0.1:9", method_names=["casefile.create"]))
    assert list(reply.unknown_methods) == ["casefile.create"]
    got = (await stub.GetMethod(pb.GetMethodRequest(name="casefile.create"))).method
    assert [e.worker_id for e in got.endpoints] == ["w1"]


async def test_a_lease_beyond_a_day_is_refused(stub):
    for call in (register(stub, "casefile.create", worker_id="w1", address="127.0.0.1:7001",
                          lease_ttl=315576000000),
                 stub.Heartbeat(pb.HeartbeatRequest(worker_id="w1", address="127.0.0.1:7001",
                                                    lease_ttl=seconds_to_duration(90_000)))):
        err = await rpc_error(call)
        assert err.code == grpc.StatusCode.INVALID_ARGUMENT
        assert err.violations == [("lease_ttl", "must be from 0 to 24h")]

async def test_heartbeat_without_names_renews_every_method_of_that_worker_only(stub):
    await register(stub, "casefile.create", worker_id="w1", address="127.0.0.1:7001",
                   lease_ttl=5)
    await register(stub, "casefile.get", worker_id="w1", address="127.0.0.1:7001", lease_ttl=5)
    other = await register(stub, "casefile.get", worker_id="w2", address="127.0.0.1:7002",
                           lease_ttl=5)
    reply = await stub.Heartbeat(pb.HeartbeatRequest(
        worker_id="w1", address="127.0.0.1:7001", lease_ttl=seconds_to_duration(60)))

    listed = await stub.ListMethods(pb.ListMethodsRequest())
    expiries = {(m.name, e.worker_id): e.lease_expire_time
                for m in listed.methods for e in m.endpoints}
    w2_before = {e.worker_id: e for e in other.method.endpoints}["w2"].lease_expire_time
    assert expiries == {
        ("casefile.create", "w1"): reply.lease_expire_time,
        ("casefile.get", "w1"): reply.lease_expire_time,
        ("casefile.get", "w2"): w2_before,
    }


async def test_heartbeat_needs_a_worker_id_and_an_address(stub):
    err = await rpc_error(stub.Heartbeat(pb.HeartbeatRequest()))
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert sorted(field for field, _ in err.violations) == ["address", "worker_id"]


async def test_register_rejects_a_negative_lease_ttl(stub):
    err = await rpc_error(register(stub, "casefile.create", worker_id="w1",
                                   address="127.0.0.1:7001", lease_ttl=-1))
    assert [field for field, _ in err.violations] == ["lease_ttl"]


async def test_endpoints_unavailable_for_long_are_forgotten(start_registry, database_url,
                                                            open_watch):
    stub = (await start_registry(lease_ttl=0.5)).stub
    await register(stub, "casefile.create", worker_id="w1", address="127.0.0.1:7001")
    await register(stub, "casefile.create", worker_id="w2", address="127.0.0.1:7002",
                   lease_ttl=30)
    watch = await open_watch(stub)
    await watch.until_synced()
    await watch.until(lambda e: states(e).get("w1") == UNAVAILABLE)

    # Another replica's sweeper does the forgetting; this one hears of it by polling.
    db = Database(database_url)
    await db.open()
    try:
        later = utcnow() + dt.timedelta(seconds=ENDPOINT_RETENTION)
        assert await LeaseStore(db).forget(later) == ["casefile.create"]
    finally:
        await db.close()
    assert states(await watch.next()) == {"w2": AVAILABLE}


async def test_an_old_worker_restarting_does_not_roll_a_served_method_back(stub):
    await register(stub, "casefile.create", version="2.0.0", worker_id="w2",
                   address="127.0.0.1:7002", lease_ttl=30, description="v2")

    reply = await register(stub, "casefile.create", version="1.0.0", worker_id="w1",
                           address="127.0.0.1:7001", lease_ttl=30, description="v1")

    assert (reply.method.version, reply.method.description) == ("2.0.0", "v2")
    assert {e.worker_id for e in reply.method.endpoints} == {"w1", "w2"}
    # With nobody serving 2.0.0 any more, the old version may come back (a rollback),
    # and an operator's registration (no worker) always replaces.
    await stub.DeleteMethod(pb.DeleteMethodRequest(name="casefile.create"))
    await register(stub, "casefile.create", version="2.0.0", description="v2")
    back = await register(stub, "casefile.create", version="1.0.0", worker_id="w1",
                          address="127.0.0.1:7001", lease_ttl=30, description="v1")
    assert back.method.version == "1.0.0"
    operator = await register(stub, "casefile.create", version="0.9.0", description="v0")
    assert operator.method.version == "0.9.0"
