"""RegistryClient against a real registry: every RPC, typed results, BatonErrors."""

from __future__ import annotations

import dataclasses
import uuid

import pytest

from baton.registry.v1 import registry_pb2
from baton_core import InvalidArgument, NotFound, struct_to_dict
from baton_sdk import MethodDefinition, RegistryClient

from .parcels import Parcel, quote

pytestmark = pytest.mark.timeout(15)


@pytest.fixture
def domain() -> str:
    """A domain of this test's own, so tests sharing the registry keep apart."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def registry(registry_addr, registry_client) -> RegistryClient:
    return registry_client(registry_addr, token="t0k")


def definition(name: str) -> MethodDefinition:
    return dataclasses.replace(MethodDefinition.from_callable(quote), name=name)


async def test_register_get_update_and_delete_a_method(registry, domain):
    name = f"{domain}.quote"
    stored = await registry.register_method(definition(name))
    assert stored.name == name and stored.domain == domain
    assert struct_to_dict((await registry.get_method(name)).input_schema) == (
        Parcel.model_json_schema())
    changed = await registry.update_method(
        registry_pb2.Method(name=name, description="Prices parcels fast."), ["description"])
    assert changed.description == "Prices parcels fast." and changed.version == "1.1.0"
    await registry.delete_method(name)
    with pytest.raises(NotFound):
        await registry.get_method(name)


async def test_list_and_search_methods(registry, domain):
    for verb in ("quote", "ship", "track"):
        await registry.register_method(definition(f"{domain}.{verb}"))
    page = await registry.list_methods(domain=domain, page_size=2)
    assert [m.name for m in page.methods] == [f"{domain}.quote", f"{domain}.ship"]
    rest = await registry.list_methods(domain=domain, page_token=page.next_page_token)
    assert [m.name for m in rest.methods] == [f"{domain}.track"]
    assert not rest.next_page_token
    tagged = await registry.list_methods(domain=domain, tag="pricing")
    assert len(tagged.methods) == 3
    hits = await registry.search_methods(f"{domain} track")
    assert hits and hits[0].method.name == f"{domain}.track"
    with pytest.raises(InvalidArgument):
        await registry.search_methods("")


async def test_validate_parameters_lists_violations(registry, domain):
    name = f"{domain}.quote"
    await registry.register_method(definition(name))
    ok = await registry.validate_parameters(name, {"weight_kg": 1.5, "destination": "Oslo"})
    assert ok.valid and not ok.violations
    bad = await registry.validate_parameters(name, {"weight_kg": "heavy"})
    assert not bad.valid
    assert {v.field for v in bad.violations} == {"params.weight_kg", "params.destination"}


async def test_tools_are_registered_fetched_and_listed(registry, domain):
    name = f"{domain}.quote"
    await registry.register_method(definition(name))
    tool = await registry.register_tool(
        f"{domain}_quote", method=name, description="Price a parcel.",
        parameters_schema={"type": "object", "properties": {"kg": {"type": "number"}}},
        parameter_mapping={"kg": "weight_kg"})
    assert tool.method == name and dict(tool.parameter_mapping) == {"kg": "weight_kg"}
    assert (await registry.get_tool(f"{domain}_quote")).description == "Price a parcel."
    listed = await registry.list_tools(page_size=1000)
    assert f"{domain}_quote" in [t.name for t in listed.tools]
    with pytest.raises(NotFound):
        await registry.register_tool(f"{domain}_x", method=f"{domain}.nothing")
    with pytest.raises(NotFound):
        await registry.get_tool(f"{domain}_nothing")


async def test_heartbeat_reports_unknown_methods(registry, domain):
    name = f"{domain}.quote"
    await registry.register_method(definition(name), worker_id="w", address="127.0.0.1:1",
                                   lease_ttl=30)
    reply = await registry.heartbeat("w", "127.0.0.1:1", method_names=[name, f"{domain}.gone"],
                                     lease_ttl=30)
    assert list(reply.unknown_methods) == [f"{domain}.gone"]
    assert reply.HasField("lease_expire_time")


async def test_watch_methods_streams_existing_synced_then_changes(registry, domain):
    await registry.register_method(definition(f"{domain}.quote"))
    watch = registry.watch_methods(domain=domain)
    events = [await anext(watch), await anext(watch)]
    assert [e.type for e in events] == [registry_pb2.WatchMethodsResponse.EVENT_TYPE_EXISTING,
                                       registry_pb2.WatchMethodsResponse.EVENT_TYPE_SYNCED]
    await registry.register_method(definition(f"{domain}.ship"))
    change = await anext(watch)
    assert change.type == registry_pb2.WatchMethodsResponse.EVENT_TYPE_UPSERTED
    assert change.method.name == f"{domain}.ship"
    await watch.aclose()


async def test_bad_input_is_invalid_argument_with_violations(registry):
    with pytest.raises(InvalidArgument) as caught:
        await registry.register_method(registry_pb2.Method(name="NotDotted"))
    assert caught.value.violations[0][0] == "method.name"
