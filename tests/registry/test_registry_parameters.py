"""ValidateParameters: every violation of the method's input schema, with its path."""

from __future__ import annotations

import grpc
import pytest

from baton.registry.v1 import registry_pb2 as pb
from baton_core import dict_to_struct

from .builders import register, rpc_error

pytestmark = pytest.mark.timeout(30)

SCHEMA = {
    "type": "object",
    "required": ["title", "items"],
    "properties": {
        "title": {"type": "string", "minLength": 1},
        "priority": {"type": "integer", "maximum": 5},
        "items": {"type": "array", "items": {
            "type": "object", "required": ["name"],
            "properties": {"name": {"type": "string"}}}},
    },
}


async def validate(stub, params) -> pb.ValidateParametersResponse:
    return await stub.ValidateParameters(pb.ValidateParametersRequest(
        name="casefile.create", params=dict_to_struct(params)))


async def test_validation_lists_every_violation_with_its_path(stub):
    await register(stub, "casefile.create", input_schema=SCHEMA)
    reply = await validate(stub, {"priority": 9, "items": [{"name": "a"}, {"name": 2}, {}]})
    assert not reply.valid
    assert sorted(v.field for v in reply.violations) == [
        "params.items[1].name", "params.items[2].name", "params.priority", "params.title"]
    by_field = {v.field: v.description for v in reply.violations}
    assert "required" in by_field["params.title"]
    assert "2 is not of type 'string'" in by_field["params.items[1].name"]


async def test_params_that_match_the_schema_are_valid(stub):
    await register(stub, "casefile.create", input_schema=SCHEMA)
    reply = await validate(stub, {"title": "x", "priority": 1, "items": [{"name": "a"}]})
    assert reply.valid
    assert list(reply.violations) == []


async def test_a_method_without_input_schema_accepts_any_params(stub):
    await register(stub, "casefile.create")
    assert (await validate(stub, {"anything": [1, 2]})).valid


async def test_validating_for_an_unknown_method_is_not_found(stub):
    err = await rpc_error(validate(stub, {}))
    assert err.code == grpc.StatusCode.NOT_FOUND


class _CountingHTTP:
    """A stand-in for a schema server on the outside world: counts every request."""

    def __init__(self) -> None:
        import http.server
        import threading

        counter = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                counter.requests += 1
                body = b'{"type": "string"}'
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.requests = 0
        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/s.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


async def test_a_schema_referring_outside_itself_is_refused_and_never_fetched(stub):
    outside = _CountingHTTP()
    try:
        for ref in (outside.url, "file:///etc/hostname", "other.json#/x"):
            schema = {"type": "object", "properties": {"a": {"$ref": ref}}}
            err = await rpc_error(register(stub, "ref.remote", input_schema=schema))
            assert err.code == grpc.StatusCode.INVALID_ARGUMENT
            assert [field for field, _ in err.violations] == [
                "method.input_schema.properties.a.$ref"]
            assert "outside the schema" in err.violations[0][1]
        assert outside.requests == 0
        assert (await rpc_error(stub.GetMethod(pb.GetMethodRequest(name="ref.remote")))).code \
            == grpc.StatusCode.NOT_FOUND
    finally:
        outside.close()


async def test_a_reference_to_nothing_in_the_schema_is_refused(stub):
    schema = {"type": "object", "$defs": {"Known": {"type": "string"}}, "properties": {
        "a": {"$ref": "#/$defs/Known"}, "b": {"$ref": "#/definitions/Missing"}}}
    err = await rpc_error(register(stub, "ref.missing", input_schema=schema))
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert err.violations == [("method.input_schema.properties.b.$ref",
                               "'#/definitions/Missing' points at nothing in the schema")]


async def test_keywords_beside_a_reference_apply_too(stub):
    # Drafts 4-7 ignore them (so fastjsonschema would); 2020-12 applies them.
    schema = {"type": "object", "$defs": {"S": {"type": "string"}},
              "properties": {"a": {"$ref": "#/$defs/S", "maxLength": 2}}}
    await register(stub, "casefile.create", input_schema=schema)
    reply = await validate(stub, {"a": "hello"})
    assert not reply.valid
    assert [v.field for v in reply.violations] == ["params.a"]
    assert (await validate(stub, {"a": "hi"})).valid


async def test_a_schema_whose_references_loop_is_refused(stub):
    for schema in ({"$ref": "#"},
                   {"$defs": {"A": {"$ref": "#/$defs/B"}, "B": {"$ref": "#/$defs/A"}},
                    "$ref": "#/$defs/A"},
                   {"allOf": [{"$ref": "#"}]}):
        err = await rpc_error(register(stub, "ref.loop", input_schema=schema))
        assert err.code == grpc.StatusCode.INVALID_ARGUMENT, schema
        assert "lead back to themselves" in err.violations[0][1]
    # A schema that refers to itself deeper in the value (a tree) is fine.
    tree = {"type": "object", "properties": {"children": {"type": "array",
                                                          "items": {"$ref": "#"}}}}
    await register(stub, "casefile.create", input_schema=tree)
    assert (await validate(stub, {"children": [{"children": []}]})).valid
    assert not (await validate(stub, {"children": [{"children": 5}]})).valid


async def test_a_value_of_none_of_the_allowed_types_says_which_are_allowed(stub):
    from pydantic import BaseModel

    class In(BaseModel):
        opt: int | None = None

    await register(stub, "casefile.create", input_schema=In.model_json_schema())
    reply = await validate(stub, {"opt": 1.5})
    assert [(v.field, v.description) for v in reply.violations] == [
        ("params.opt", "must be an integer or null")]
