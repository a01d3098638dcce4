"""What RegisterMethod, UpdateMethod, RegisterTool and the lookups refuse, and how."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import field_mask_pb2

from baton.registry.v1 import registry_pb2 as pb
from baton_core import dict_to_struct, struct_to_dict

from .builders import method, register, rpc_error

pytestmark = pytest.mark.timeout(30)

OBJECT = {"type": "object", "properties": {"title": {"type": "string"}}}
# Three problems the JSON Schema meta-schema finds, in three places.
BROKEN = {"type": "object", "required": "title", "properties": {
    "title": {"type": "strin"}, "size": {"type": "integer", "minimum": "1"}}}
BROKEN_FIELDS = ["properties.size.minimum", "properties.title.type", "required"]


async def assert_not_found(stub, name: str) -> None:
    err = await rpc_error(stub.GetMethod(pb.GetMethodRequest(name=name)))
    assert err.code == grpc.StatusCode.NOT_FOUND


async def test_register_reports_every_problem_of_each_schema_and_stores_nothing(stub):
    message = method("casefile.create", input_schema=BROKEN)
    message.output_schema.CopyFrom(dict_to_struct(BROKEN))
    err = await rpc_error(stub.RegisterMethod(pb.RegisterMethodRequest(method=message)))
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in err.violations] == (
        [f"method.input_schema.{f}" for f in BROKEN_FIELDS]
        + [f"method.output_schema.{f}" for f in BROKEN_FIELDS])
    assert dict(err.violations)["method.input_schema.properties.title.type"].startswith(
        "'strin' is not one of ['array', 'boolean'")
    assert "(and 5 more problems)" in err.message
    await assert_not_found(stub, "casefile.create")


async def test_update_reports_every_problem_of_the_schema_and_changes_nothing(stub):
    await register(stub, "casefile.create", input_schema=OBJECT)
    err = await rpc_error(stub.UpdateMethod(pb.UpdateMethodRequest(
        method=method("casefile.create", input_schema=BROKEN),
        update_mask=field_mask_pb2.FieldMask(paths=["input_schema"]))))
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in err.violations] == [f"method.input_schema.{f}" for f in BROKEN_FIELDS]
    got = (await stub.GetMethod(pb.GetMethodRequest(name="casefile.create"))).method
    assert struct_to_dict(got.input_schema) == OBJECT


@pytest.mark.parametrize(("schema", "field"), [
    ({"type": "string"}, "type"),
    ({"type": ["array", "null"]}, "type"),
    ({"$defs": {"Name": {"type": "string"}}, "$ref": "#/$defs/Name"}, "$defs.Name.type"),
    ({"anyOf": [{"type": "integer"}, {"type": "null"}]}, "anyOf"),
])
async def test_a_schema_no_json_object_can_meet_is_refused(stub, schema, field):
    # Params and results travel as google.protobuf.Struct: always a JSON object.
    err = await rpc_error(register(stub, "casefile.create", input_schema=schema))
    assert err.violations == [(f"method.input_schema.{field}", err.violations[0][1])]
    assert "params are always a JSON object" in err.violations[0][1]

    message = method("casefile.create")
    message.output_schema.CopyFrom(dict_to_struct(schema))
    err = await rpc_error(stub.RegisterMethod(pb.RegisterMethodRequest(method=message)))
    assert [f for f, _ in err.violations] == [f"method.output_schema.{field}"]
    assert "results are always a JSON object" in err.violations[0][1]
    await assert_not_found(stub, "casefile.create")


async def test_a_schema_of_objects_is_accepted_with_or_without_type_ref_or_any_of(stub):
    from pydantic import BaseModel

    class Node(BaseModel):
        children: list[Node] = []

    for schema in ({"properties": {"title": {"type": "string"}}}, Node.model_json_schema(),
                   {"anyOf": [OBJECT, {"type": "null"}]}, {"type": ["object", "null"]}):
        assert "$ref" in Node.model_json_schema()  # pydantic's recursive models refer
        await register(stub, "casefile.create", input_schema=schema, output_schema=schema)


async def test_a_tool_whose_parameters_are_not_an_object_is_refused(stub):
    await register(stub, "casefile.create")
    tool = pb.Tool(name="create", method="casefile.create")
    tool.parameters_schema.CopyFrom(dict_to_struct({"type": "array"}))
    err = await rpc_error(stub.RegisterTool(pb.RegisterToolRequest(tool=tool)))
    assert [f for f, _ in err.violations] == ["tool.parameters_schema.type"]
    assert "tool arguments are always a JSON object" in err.violations[0][1]


async def test_every_identifier_of_a_method_is_bounded(stub):
    message = method("casefile.create", domain="d" * 256, tags=[f"t{i}" for i in range(65)],
                     description="x" * 16_385)
    err = await rpc_error(stub.RegisterMethod(pb.RegisterMethodRequest(
        method=message, worker_id="w" * 256, address="a" * 256)))
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert sorted(f for f, _ in err.violations) == [
        "address", "method.description", "method.domain", "method.tags", "worker_id"]
    await assert_not_found(stub, "casefile.create")

    # At the bounds, everything is kept as sent (PostgreSQL too: varchar(255)).
    reply = await register(stub, "casefile.create", domain="d" * 255, worker_id="w" * 255,
                           address="a" * 255, tags=[f"t{i}" for i in range(64)],
                           description="x" * 16_384)
    assert reply.method.domain == "d" * 255 and len(reply.method.tags) == 64
    assert reply.method.endpoints[0].worker_id == "w" * 255


async def test_retryable_codes_name_each_status_code_at_most_once(stub):
    codes = "method.retry_policy.retryable_codes"
    err = await rpc_error(register(stub, "casefile.create", retry_policy=pb.RetryPolicy(
        retryable_codes=["UNAVAILABLE"] * 18)))
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert err.violations == [(codes, "at most 17 codes, not 18")]
    err = await rpc_error(register(stub, "casefile.create", retry_policy=pb.RetryPolicy(
        retryable_codes=["UNAVAILABLE", "ABORTED", "unavailable", "NOPE"])))
    assert err.violations == [(f"{codes}[2]", "'unavailable' is repeated"),
                              (f"{codes}[3]", "'NOPE' is not a gRPC status code")]
    await assert_not_found(stub, "casefile.create")

    # Every code once is the most there is to name, and is kept as sent.
    every = [code.name for code in grpc.StatusCode]
    reply = await register(stub, "casefile.create",
                           retry_policy=pb.RetryPolicy(retryable_codes=every))
    assert list(reply.method.retry_policy.retryable_codes) == every
    err = await rpc_error(stub.UpdateMethod(pb.UpdateMethodRequest(
        method=method("casefile.create", retry_policy=pb.RetryPolicy(
            retryable_codes=["ABORTED", "ABORTED"])),
        update_mask=field_mask_pb2.FieldMask(paths=["retry_policy"]))))
    assert err.violations == [(f"{codes}[1]", "'ABORTED' is repeated")]


async def test_a_long_pattern_in_a_schema_is_refused(stub):
    schema = {"type": "object", "properties": {"code": {"type": "string",
                                                        "pattern": "a?" * 501}}}
    err = await rpc_error(register(stub, "casefile.create", input_schema=schema))
    assert err.violations == [("method.input_schema.properties.code.pattern",
                               "must be at most 1,000 characters, not 1,002")]


async def test_every_identifier_of_a_tool_is_bounded(stub):
    await register(stub, "casefile.create")
    tool = pb.Tool(name="create", method="casefile.create", description="x" * 16_385,
                   parameter_mapping={"k" * 256: "title", "subject": "v" * 256})
    err = await rpc_error(stub.RegisterTool(pb.RegisterToolRequest(tool=tool)))
    assert sorted(f for f, _ in err.violations) == [
        "tool.description", "tool.parameter_mapping." + "k" * 256,
        "tool.parameter_mapping.subject"]


async def test_heartbeat_identifiers_are_bounded(stub):
    err = await rpc_error(stub.Heartbeat(pb.HeartbeatRequest(
        worker_id="w" * 256, address="a" * 256, method_names=["casefile.create", "m" * 256])))
    assert sorted(f for f, _ in err.violations) == ["address", "method_names[1]", "worker_id"]
    # Each name is a lookup under the registry's write lock: a heartbeat names at most 1,000.
    err = await rpc_error(stub.Heartbeat(pb.HeartbeatRequest(
        worker_id="w1", address="127.0.0.1:9",
        method_names=[f"casefile.m{i}" for i in range(1001)])))
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in err.violations] == ["method_names"]


@pytest.mark.parametrize("call", [
    lambda stub, s: stub.GetMethod(pb.GetMethodRequest(name=s)),
    lambda stub, s: stub.DeleteMethod(pb.DeleteMethodRequest(name=s)),
    lambda stub, s: stub.ValidateParameters(pb.ValidateParametersRequest(name=s)),
    lambda stub, s: stub.GetTool(pb.GetToolRequest(name=s)),
    lambda stub, s: stub.DeleteTool(pb.DeleteToolRequest(name=s)),
    lambda stub, s: stub.ListMethods(pb.ListMethodsRequest(domain=s)),
    lambda stub, s: stub.ListMethods(pb.ListMethodsRequest(tag=s)),
])
async def test_a_lookup_longer_than_anything_stored_is_invalid_argument(stub, call):
    err = await rpc_error(call(stub, "x" * 256))
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert err.violations[0][1] == "must be at most 255 characters, not 256"


async def test_a_search_query_is_bounded(stub):
    err = await rpc_error(stub.SearchMethods(pb.SearchMethodsRequest(query="word " * 201)))
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in err.violations] == ["query"]


async def test_a_watch_of_a_domain_longer_than_any_is_invalid_argument(stub):
    call = stub.WatchMethods(pb.WatchMethodsRequest(domain="d" * 256))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call.read()
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
