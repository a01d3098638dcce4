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
