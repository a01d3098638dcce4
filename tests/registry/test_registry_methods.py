"""RegisterMethod, GetMethod, ListMethods, UpdateMethod and DeleteMethod."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import field_mask_pb2

from baton.registry.v1 import registry_pb2 as pb
from baton_core import dict_to_struct, seconds_to_duration, struct_to_dict

from .builders import method, register, rpc_error

pytestmark = pytest.mark.timeout(30)

TITLE_SCHEMA = {"type": "object", "properties": {"title": {"type": "string"}},
                "required": ["title"]}


async def test_registered_method_is_returned_by_get_with_default_domain(stub):
    reply = await register(stub, "casefile.create", description="Opens a case file",
                           version="1.0.0", tags=("cases", "write"),
                           input_schema=TITLE_SCHEMA, idempotent=True,
                           default_timeout=seconds_to_duration(2.5))
    assert reply.created

    got = (await stub.GetMethod(pb.GetMethodRequest(name="casefile.create"))).method
    assert got.domain == "casefile"
    assert got.version == "1.0.0"
    assert list(got.tags) == ["cases", "write"]
    assert struct_to_dict(got.input_schema) == TITLE_SCHEMA
    assert got.default_timeout.ToMilliseconds() == 2500
    assert got.idempotent
    assert got.create_time.seconds > 0
    assert got.create_time == got.update_time
    assert got == reply.method


async def test_registering_again_replaces_the_method_and_keeps_create_time(stub):
    first = (await register(stub, "casefile.create", description="v1", tags=("a",))).method
    second = await register(stub, "casefile.create", description="v2", domain="cases")
    assert not second.created
    assert second.method.description == "v2"
    assert second.method.domain == "cases"
    assert list(second.method.tags) == []
    assert second.method.create_time == first.create_time
    assert second.method.update_time.ToNanoseconds() > first.update_time.ToNanoseconds()


async def test_retry_policy_round_trips(stub):
    policy = pb.RetryPolicy(
        strategy=pb.RetryPolicy.STRATEGY_EXPONENTIAL, max_attempts=5,
        initial_delay=seconds_to_duration(0.25), max_delay=seconds_to_duration(4),
        multiplier=2.0, retryable_codes=["UNAVAILABLE", "ABORTED"])
    await register(stub, "casefile.create", retry_policy=policy)
    got = (await stub.GetMethod(pb.GetMethodRequest(name="casefile.create"))).method
    assert got.retry_policy == policy


@pytest.mark.parametrize("name", ["Casefile.create", "casefile", "casefile..create",
                                  "casefile.create!", "", "1case.create"])
async def test_register_rejects_a_name_that_is_not_dotted_lower_case(stub, name):
    err = await rpc_error(stub.RegisterMethod(pb.RegisterMethodRequest(method=method(name))))
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in err.violations] == ["method.name"]


async def test_register_rejects_an_invalid_json_schema_and_stores_nothing(stub):
    bad = {"type": "object", "properties": {"title": {"type": "strin"}}}
    err = await rpc_error(register(stub, "casefile.create", input_schema=bad))
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in err.violations] == ["method.input_schema.properties.title.type"]

    missing = await rpc_error(stub.GetMethod(pb.GetMethodRequest(name="casefile.create")))
    assert missing.code == grpc.StatusCode.NOT_FOUND


async def test_register_lists_every_bad_field_at_once(stub):
    request = pb.RegisterMethodRequest(
        method=method("casefile.create", version="not a version", tags=("a", "a"),
                      retry_policy=pb.RetryPolicy(max_attempts=-1, retryable_codes=["NOPE"])),
        worker_id="w1")
    err = await rpc_error(stub.RegisterMethod(request))
    assert sorted(field for field, _ in err.violations) == [
        "address", "method.retry_policy.max_attempts",
        "method.retry_policy.retryable_codes[0]", "method.tags[1]", "method.version"]


async def test_register_refuses_what_the_method_listing_could_not_carry(stub):
    # A timeout beyond 24 h and an Infinity in a schema would break every later listing.
    message = method("casefile.create", input_schema={
        "type": "object", "properties": {"x": {"type": "number", "default": float("inf")}}})
    message.default_timeout.CopyFrom(seconds_to_duration(1e6))
    err = await rpc_error(stub.RegisterMethod(pb.RegisterMethodRequest(method=message)))
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert err.message.startswith("invalid method 'casefile.create': ")
    assert err.violations == [
        ("method.input_schema.properties.x.default", "inf is not a JSON number"),
        ("method.default_timeout", "must be from 0 to 24h")]
    missing = await rpc_error(stub.GetMethod(pb.GetMethodRequest(name="casefile.create")))
    assert missing.code == grpc.StatusCode.NOT_FOUND


async def test_get_unknown_method_is_not_found(stub):
    err = await rpc_error(stub.GetMethod(pb.GetMethodRequest(name="nope.nothing")))
    assert (err.code, err.reason) == (grpc.StatusCode.NOT_FOUND, "METHOD_NOT_FOUND")
    assert err.metadata == {"method": "nope.nothing"}


async def test_a_call_naming_no_method_or_tool_is_invalid_argument(stub):
    for call in (stub.GetMethod(pb.GetMethodRequest()),
                 stub.DeleteMethod(pb.DeleteMethodRequest()),
                 stub.ValidateParameters(pb.ValidateParametersRequest()),
                 stub.GetTool(pb.GetToolRequest())):
        err = await rpc_error(call)
        assert (err.code, err.violations) == (grpc.StatusCode.INVALID_ARGUMENT,
                                              [("name", "is required")])


async def test_list_filters_by_domain_and_by_tag(stub):
    await register(stub, "casefile.create", tags=("write",))
    await register(stub, "casefile.get", tags=("read",))
    await register(stub, "billing.charge", tags=("write",))
    await register(stub, "billing.refund", domain="refunds", tags=("write",))

    async def names(**filters) -> list[str]:
        reply = await stub.ListMethods(pb.ListMethodsRequest(**filters))
        return [m.name for m in reply.methods]

    assert await names() == ["billing.charge", "billing.refund", "casefile.create",
                             "casefile.get"]
    assert await names(domain="casefile") == ["casefile.create", "casefile.get"]
    assert await names(domain="billing") == ["billing.charge"]
    assert await names(tag="write") == ["billing.charge", "billing.refund", "casefile.create"]
    assert await names(domain="casefile", tag="write") == ["casefile.create"]
    assert await names(tag="missing") == []


async def test_list_pages_through_every_method_in_name_order(stub):
    expected = [f"domain.method_{i:02d}" for i in range(7)]
    for name in reversed(expected):
        await register(stub, name, tags=("t",))
    await register(stub, "other.method")

    seen, token, pages = [], "", 0
    while True:
        reply = await stub.ListMethods(pb.ListMethodsRequest(
            domain="domain", page_size=3, page_token=token))
        seen += [m.name for m in reply.methods]
        pages += 1
        token = reply.next_page_token
        if not token:
            break
    assert seen == expected
    assert pages == 3


async def test_list_rejects_a_bad_page_token_or_size(stub):
    await register(stub, "casefile.create")
    await register(stub, "casefile.get")
    first = await stub.ListMethods(pb.ListMethodsRequest(page_size=1))
    assert first.next_page_token

    garbage = await rpc_error(stub.ListMethods(pb.ListMethodsRequest(page_token="%%%")))
    assert garbage.code == grpc.StatusCode.INVALID_ARGUMENT
    assert garbage.violations[0][0] == "page_token"
    other_filter = await rpc_error(stub.ListMethods(pb.ListMethodsRequest(
        domain="billing", page_token=first.next_page_token)))
    assert other_filter.code == grpc.StatusCode.INVALID_ARGUMENT
    negative = await rpc_error(stub.ListMethods(pb.ListMethodsRequest(page_size=-1)))
    assert negative.violations[0][0] == "page_size"


async def test_update_changes_only_the_masked_fields(stub):
    await register(stub, "casefile.create", description="old", version="1.0.0",
                   tags=("a",), input_schema=TITLE_SCHEMA)
    patch = method("casefile.create", description="new", version="9.9.9", tags=("b", "c"))
    reply = await stub.UpdateMethod(pb.UpdateMethodRequest(
        method=patch, update_mask=field_mask_pb2.FieldMask(paths=["description", "tags"])))

    updated = reply.method
    assert updated.description == "new"
    assert list(updated.tags) == ["b", "c"]
    assert updated.version == "1.0.0"
    assert struct_to_dict(updated.input_schema) == TITLE_SCHEMA
    got = (await stub.GetMethod(pb.GetMethodRequest(name="casefile.create"))).method
    assert got == updated


async def test_update_without_a_mask_changes_the_fields_that_are_set(stub):
    await register(stub, "casefile.create", description="old", version="1.0.0")
    reply = await stub.UpdateMethod(pb.UpdateMethodRequest(
        method=method("casefile.create", version="2.0.0")))
    assert reply.method.version == "2.0.0"
    assert reply.method.description == "old"


async def test_update_with_an_unknown_mask_path_is_invalid_and_changes_nothing(stub):
    await register(stub, "casefile.create", description="old")
    err = await rpc_error(stub.UpdateMethod(pb.UpdateMethodRequest(
        method=method("casefile.create", description="new"),
        update_mask=field_mask_pb2.FieldMask(paths=["description", "endpoints"]))))
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert err.violations[0][0] == "update_mask.paths"
    got = (await stub.GetMethod(pb.GetMethodRequest(name="casefile.create"))).method
    assert got.description == "old"


async def test_update_with_an_invalid_schema_is_rejected_and_changes_nothing(stub):
    await register(stub, "casefile.create", input_schema=TITLE_SCHEMA)
    patch = method("casefile.create")
    patch.input_schema.CopyFrom(dict_to_struct({"type": 12}))
    err = await rpc_error(stub.UpdateMethod(pb.UpdateMethodRequest(
        method=patch, update_mask=field_mask_pb2.FieldMask(paths=["input_schema"]))))
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert err.violations[0][0] == "method.input_schema.type"
    got = (await stub.GetMethod(pb.GetMethodRequest(name="casefile.create"))).method
    assert struct_to_dict(got.input_schema) == TITLE_SCHEMA


async def test_update_of_an_unknown_method_is_not_found(stub):
    err = await rpc_error(stub.UpdateMethod(pb.UpdateMethodRequest(
        method=method("nope.nothing", description="x"),
        update_mask=field_mask_pb2.FieldMask(paths=["description"]))))
    assert err.code == grpc.StatusCode.NOT_FOUND


async def test_clearing_the_domain_restores_the_default(stub):
    await register(stub, "casefile.create", domain="cases")
    reply = await stub.UpdateMethod(pb.UpdateMethodRequest(
        method=method("casefile.create"), update_mask=field_mask_pb2.FieldMask(paths=["domain"])))
    assert reply.method.domain == "casefile"


async def test_deleted_method_is_gone_and_deleting_again_is_not_found(stub):
    await register(stub, "casefile.create", worker_id="w1", address="127.0.0.1:1")
    await stub.DeleteMethod(pb.DeleteMethodRequest(name="casefile.create"))

    gone = await rpc_error(stub.GetMethod(pb.GetMethodRequest(name="casefile.create")))
    assert gone.code == grpc.StatusCode.NOT_FOUND
    again = await rpc_error(stub.DeleteMethod(pb.DeleteMethodRequest(name="casefile.create")))
    assert again.code == grpc.StatusCode.NOT_FOUND
    listed = await stub.ListMethods(pb.ListMethodsRequest())
    assert list(listed.methods) == []


async def test_an_error_echoing_a_huge_request_still_arrives(stub):
    # The name comes back in the message and the ErrorInfo: uncut, 20,000 characters
    # overflowed the trailers and the caller got RESOURCE_EXHAUSTED instead.
    name = "x" * 20_000
    err = await rpc_error(stub.GetMethod(pb.GetMethodRequest(name=name)))
    assert err.code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT)
    assert len(err.message) < 3000
    many = await rpc_error(register(stub, "casefile.create", tags=["Bad Tag!"] * 10_000))
    assert many.code == grpc.StatusCode.INVALID_ARGUMENT
    assert len(many.violations) == 51 and many.violations[-1][1] == "... and 9950 more"


async def test_an_enum_number_that_names_nothing_is_invalid_argument(stub):
    method = pb.Method(name="casefile.create", version="1.0.0",
                       retry_policy=pb.RetryPolicy(strategy=99))
    err = await rpc_error(stub.RegisterMethod(pb.RegisterMethodRequest(method=method)))
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in err.violations] == ["method.retry_policy.strategy"]


async def test_large_schemas_are_bounded_and_listed_in_pages_that_fit(stub):
    def schema(kilobytes: int) -> dict:
        return {"type": "object", "description": "x" * (kilobytes * 1024)}

    err = await rpc_error(register(stub, "big.one", input_schema=schema(300)))
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in err.violations] == ["method.input_schema"]
    # 45 methods of ~2 x 120 KB: ~10.8 MB, more than one reply should carry.
    for i in range(45):
        await register(stub, f"big.m{i:02d}", input_schema=schema(120),
                       output_schema=schema(120))
    names, token, pages = [], "", 0
    while True:
        reply = await stub.ListMethods(pb.ListMethodsRequest(domain="big", page_token=token))
        assert reply.ByteSize() < 4 * 1024 * 1024
        names += [m.name for m in reply.methods]
        pages += 1
        token = reply.next_page_token
        if not token:
            break
    assert names == [f"big.m{i:02d}" for i in range(45)] and pages >= 2
