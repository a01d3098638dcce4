"""RegisterTool, GetTool and ListTools."""

from __future__ import annotations

import grpc
import pytest

from baton.registry.v1 import registry_pb2 as pb
from baton_core import dict_to_struct, struct_to_dict

from .builders import register, rpc_error

pytestmark = pytest.mark.timeout(30)

METHOD_SCHEMA = {"type": "object", "properties": {"title": {"type": "string"},
                                                  "owner": {"type": "string"}}}
TOOL_SCHEMA = {"type": "object", "properties": {"subject": {"type": "string"}}}


def tool(name: str = "create_casefile", method: str = "casefile.create",
         mapping: dict[str, str] | None = None, **fields) -> pb.Tool:
    message = pb.Tool(name=name, method=method, parameter_mapping=mapping or {}, **fields)
    message.parameters_schema.CopyFrom(dict_to_struct(TOOL_SCHEMA))
    return message


async def test_registered_tool_is_returned_by_get(stub):
    await register(stub, "casefile.create", input_schema=METHOD_SCHEMA)
    sent = tool(mapping={"subject": "title"}, description="Open a case file")
    stored = (await stub.RegisterTool(pb.RegisterToolRequest(tool=sent))).tool

    got = (await stub.GetTool(pb.GetToolRequest(name="create_casefile"))).tool
    assert got == stored
    assert got.method == "casefile.create"
    assert dict(got.parameter_mapping) == {"subject": "title"}
    assert struct_to_dict(got.parameters_schema) == TOOL_SCHEMA
    assert got.create_time.seconds > 0


async def test_registering_a_tool_again_replaces_it_and_keeps_create_time(stub):
    await register(stub, "casefile.create", input_schema=METHOD_SCHEMA)
    first = (await stub.RegisterTool(pb.RegisterToolRequest(tool=tool()))).tool
    second = (await stub.RegisterTool(pb.RegisterToolRequest(
        tool=tool(description="v2", mapping={"subject": "owner"})))).tool
    assert second.description == "v2"
    assert dict(second.parameter_mapping) == {"subject": "owner"}
    assert second.create_time == first.create_time


async def test_tool_for_an_unknown_method_is_not_found_and_not_stored(stub):
    err = await rpc_error(stub.RegisterTool(pb.RegisterToolRequest(tool=tool())))
    assert (err.code, err.reason) == (grpc.StatusCode.NOT_FOUND, "METHOD_NOT_FOUND")
    missing = await rpc_error(stub.GetTool(pb.GetToolRequest(name="create_casefile")))
    assert (missing.code, missing.reason) == (grpc.StatusCode.NOT_FOUND, "TOOL_NOT_FOUND")
    assert missing.metadata == {"tool": "create_casefile"}


async def test_mapping_onto_a_missing_method_parameter_is_invalid_and_not_stored(stub):
    await register(stub, "casefile.create", input_schema=METHOD_SCHEMA)
    err = await rpc_error(stub.RegisterTool(pb.RegisterToolRequest(
        tool=tool(mapping={"subject": "headline", "nope": "title"}))))
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert sorted(err.violations) == [
        ("tool.parameter_mapping.nope", "'nope' is not a property of the tool's "
                                        "parameters_schema"),
        ("tool.parameter_mapping.subject", "'headline' is not a parameter of method "
                                           "'casefile.create'"),
    ]
    listed = await stub.ListTools(pb.ListToolsRequest())
    assert list(listed.tools) == []


async def test_any_mapping_is_accepted_when_the_method_declares_no_properties(stub):
    await register(stub, "casefile.create")
    reply = await stub.RegisterTool(pb.RegisterToolRequest(tool=tool(mapping={"subject": "x"})))
    assert dict(reply.tool.parameter_mapping) == {"subject": "x"}


@pytest.mark.parametrize("name", ["", "has space", "x" * 65])
async def test_register_tool_rejects_a_bad_name(stub, name):
    await register(stub, "casefile.create")
    err = await rpc_error(stub.RegisterTool(pb.RegisterToolRequest(tool=tool(name=name))))
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in err.violations] == ["tool.name"]


async def test_list_tools_pages_in_name_order(stub):
    await register(stub, "casefile.create")
    names = [f"tool_{i}" for i in range(5)]
    for name in reversed(names):
        await stub.RegisterTool(pb.RegisterToolRequest(tool=tool(name=name)))

    seen, token = [], ""
    while True:
        reply = await stub.ListTools(pb.ListToolsRequest(page_size=2, page_token=token))
        seen += [t.name for t in reply.tools]
        if not (token := reply.next_page_token):
            break
    assert seen == names
    bad = await rpc_error(stub.ListTools(pb.ListToolsRequest(page_token="garbage")))
    assert bad.code == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_method_with_tools_is_deleted_only_after_them(stub):
    await register(stub, "casefile.create", input_schema=METHOD_SCHEMA)
    await stub.RegisterTool(pb.RegisterToolRequest(tool=tool(mapping={"subject": "title"})))

    refused = await rpc_error(stub.DeleteMethod(pb.DeleteMethodRequest(name="casefile.create")))
    assert (refused.code, refused.reason) == (grpc.StatusCode.FAILED_PRECONDITION,
                                              "METHOD_HAS_TOOLS")
    assert "create_casefile" in refused.message
    assert (await stub.GetMethod(pb.GetMethodRequest(name="casefile.create"))).method.name

    await stub.DeleteTool(pb.DeleteToolRequest(name="create_casefile"))
    assert (await rpc_error(stub.GetTool(pb.GetToolRequest(name="create_casefile")))).code \
        == grpc.StatusCode.NOT_FOUND
    await stub.DeleteMethod(pb.DeleteMethodRequest(name="casefile.create"))
    gone = await rpc_error(stub.DeleteTool(pb.DeleteToolRequest(name="create_casefile")))
    assert gone.code == grpc.StatusCode.NOT_FOUND


async def test_a_schema_that_drops_a_mapped_parameter_is_refused(stub):
    from google.protobuf import field_mask_pb2

    await register(stub, "casefile.create", input_schema=METHOD_SCHEMA)
    await stub.RegisterTool(pb.RegisterToolRequest(tool=tool(mapping={"subject": "title"})))
    narrower = {"type": "object", "properties": {"owner": {"type": "string"}}}

    for call in (register(stub, "casefile.create", input_schema=narrower),
                 stub.UpdateMethod(pb.UpdateMethodRequest(
                     method=pb.Method(name="casefile.create",
                                      input_schema=dict_to_struct(narrower)),
                     update_mask=field_mask_pb2.FieldMask(paths=["input_schema"])))):
        err = await rpc_error(call)
        assert (err.code, err.reason) == (grpc.StatusCode.FAILED_PRECONDITION,
                                          "TOOL_MAPPING_BROKEN")
        assert [f for f, _ in err.violations] == [
            "tools.create_casefile.parameter_mapping.subject"]
    got = (await stub.GetMethod(pb.GetMethodRequest(name="casefile.create"))).method
    assert "title" in struct_to_dict(got.input_schema)["properties"]


async def test_two_tool_parameters_cannot_map_onto_one(stub):
    await register(stub, "casefile.create", input_schema=METHOD_SCHEMA)
    schema = {"type": "object", "properties": {"q": {"type": "string"},
                                               "who": {"type": "string"}}}
    sent = pb.Tool(name="twice", method="casefile.create",
                   parameter_mapping={"q": "title", "who": "title"},
                   parameters_schema=dict_to_struct(schema))
    err = await rpc_error(stub.RegisterTool(pb.RegisterToolRequest(tool=sent)))
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert err.violations == [("tool.parameter_mapping.who", "'title' is already the target "
                               "of 'q'")]
