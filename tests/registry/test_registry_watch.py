"""WatchMethods: initial state, the SYNCED marker, then live changes from the outbox."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.protobuf import field_mask_pb2

from baton.registry.v1 import registry_pb2 as pb

from .builders import method, register, rpc_error
from .conftest import EVENT

pytestmark = pytest.mark.timeout(30)


async def test_watch_sends_existing_then_synced_then_live_changes(stub, open_watch):
    await register(stub, "casefile.create")
    await register(stub, "billing.charge", worker_id="w1", address="127.0.0.1:7001")

    watch = await open_watch(stub)
    existing = await watch.until_synced()
    assert [e.method.name for e in existing] == ["billing.charge", "casefile.create"]
    assert [ep.worker_id for ep in existing[0].method.endpoints] == ["w1"]

    await register(stub, "casefile.get", description="Reads a case file")
    upserted = await watch.next()
    assert upserted.type == EVENT.EVENT_TYPE_UPSERTED
    assert upserted.method.name == "casefile.get"
    assert upserted.method.description == "Reads a case file"

    await stub.DeleteMethod(pb.DeleteMethodRequest(name="casefile.create"))
    deleted = await watch.next()
    assert deleted.type == EVENT.EVENT_TYPE_DELETED
    assert deleted.method.name == "casefile.create"


async def test_watch_of_an_empty_registry_is_synced_at_once(stub, open_watch):
    watch = await open_watch(stub)
    assert await watch.until_synced() == []


async def test_watch_of_a_domain_sees_only_that_domain(stub, open_watch):
    await register(stub, "casefile.create")
    await register(stub, "billing.charge")
    watch = await open_watch(stub, domain="casefile")
    assert [e.method.name for e in await watch.until_synced()] == ["casefile.create"]

    await register(stub, "billing.refund")
    await register(stub, "casefile.get")
    assert (await watch.next()).method.name == "casefile.get"

    # Moving a method out of the domain reads as its deletion.
    await stub.UpdateMethod(pb.UpdateMethodRequest(
        method=method("casefile.get", domain="archive"),
        update_mask=field_mask_pb2.FieldMask(paths=["domain"])))
    moved = await watch.next()
    assert (moved.type, moved.method.name) == (EVENT.EVENT_TYPE_DELETED, "casefile.get")


async def test_rejected_requests_write_no_events(stub, open_watch):
    await register(stub, "casefile.create")
    watch = await open_watch(stub)
    await watch.until_synced()

    bad_schema = {"type": "nonsense"}
    await rpc_error(register(stub, "casefile.get", input_schema=bad_schema))
    await rpc_error(stub.UpdateMethod(pb.UpdateMethodRequest(
        method=method("casefile.create", input_schema=bad_schema),
        update_mask=field_mask_pb2.FieldMask(paths=["input_schema"]))))
    await rpc_error(stub.DeleteMethod(pb.DeleteMethodRequest(name="nope.nothing")))
    await register(stub, "marker.done")

    event = await watch.next()
    assert (event.type, event.method.name) == (EVENT.EVENT_TYPE_UPSERTED, "marker.done")


async def test_watch_neither_misses_nor_repeats_changes_made_while_it_starts(stub, open_watch):
    names = [f"load.method_{i:02d}" for i in range(30)]
    writers = asyncio.gather(*(register(stub, name) for name in names))
    watch = await open_watch(stub)
    seen = [e.method.name for e in await watch.until_synced()]
    await writers
    await register(stub, "marker.done")
    while (event := await watch.next()).method.name != "marker.done":
        assert event.type == EVENT.EVENT_TYPE_UPSERTED
        seen.append(event.method.name)
    assert sorted(seen) == names


async def test_watch_on_one_replica_sees_changes_made_through_another(start_registry,
                                                                       open_watch):
    first = await start_registry()
    second = await start_registry()
    watch = await open_watch(first.stub)
    await watch.until_synced()

    await register(second.stub, "casefile.create")
    event = await watch.next(timeout=5)
    assert (event.type, event.method.name) == (EVENT.EVENT_TYPE_UPSERTED, "casefile.create")


async def test_stopping_the_app_ends_open_watches(start_registry, open_watch):
    registry = await start_registry()
    watch = await open_watch(registry.stub)
    await watch.until_synced()

    await registry.app.stop()
    assert await asyncio.wait_for(watch.call.read(), 5) is grpc.aio.EOF
    assert await watch.call.code() == grpc.StatusCode.OK


async def test_an_update_that_changes_nothing_writes_no_event(stub, open_watch):
    await register(stub, "casefile.create", description="same")
    before = (await stub.GetMethod(pb.GetMethodRequest(name="casefile.create"))).method
    watch = await open_watch(stub)
    await watch.until_synced()

    reply = await stub.UpdateMethod(pb.UpdateMethodRequest(
        method=method("casefile.create", description="same"),
        update_mask=field_mask_pb2.FieldMask(paths=["description"])))
    assert reply.method.update_time == before.update_time
    await register(stub, "marker.done")
    event = await watch.next()
    assert (event.type, event.method.name) == (EVENT.EVENT_TYPE_UPSERTED, "marker.done")
