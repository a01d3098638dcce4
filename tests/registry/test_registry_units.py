"""Pure helpers: field masks, search scores and schema checks (page tokens: tests/core)."""

from __future__ import annotations

import pytest

from baton_core import FailedPrecondition, InvalidArgument
from baton_registry import _mask, _object_schemas, _search, _validation
from baton_registry._models import Method


def test_mask_star_means_every_updatable_field_and_unknown_paths_are_listed():
    assert _mask.resolve(["*"], []) == list(_mask.UPDATABLE)
    assert _mask.resolve([], ["name", "version", "endpoints"]) == ["version"]
    with pytest.raises(InvalidArgument) as caught:
        _mask.resolve(["version", "name", "create_time"], [])
    assert [f for f, _ in caught.value.violations] == ["update_mask.paths"] * 2
    with pytest.raises(InvalidArgument):
        _mask.resolve([], ["name"])


def test_search_score_orders_the_kinds_of_match():
    def score(**fields) -> float:
        return _search.score(Method(**{"name": "x.y", **fields}), "report")

    exact = _search.score(Method(name="a.report"), "a.report")
    token = score(name="a.report")
    tag = score(tags=("report",))
    partial = score(name="a.reporting")
    description = score(description="a report")
    assert exact > token > tag > partial > description > score() == 0
    # Everything but a name token together still ranks below a name token.
    assert token > _search.score(
        Method(name="a.reporting", tags=("report",), description="report"), "report")


def test_params_violations_name_the_missing_property_and_array_index():
    schema = {"type": "object", "required": ["a", "b"], "properties": {
        "list": {"type": "array", "items": {"type": "object", "required": ["name"]}}}}
    found = _validation.check_params(schema, {"b": 1, "list": [{"name": 1}, {}, {}]})
    assert [f for f, _ in found] == ["params.a", "params.list[1].name", "params.list[2].name"]


def test_each_unknown_property_is_a_violation_of_its_own_field():
    # One violation at `params` named them all in a message; now each is a field.
    schema = {"type": "object", "additionalProperties": False,
              "properties": {"title": {"type": "string"}, "meta": {
                  "type": "object", "additionalProperties": False,
                  "properties": {"k": {}}, "patternProperties": {"^x-": {}}}}}
    found = _validation.check_params(schema, {"title": "t", "titel": 1,
                                              "meta": {"k": 1, "x-ok": 2, "kk": 3}})
    assert sorted(f for f, _ in found) == ["params.meta.kk", "params.titel"]
    assert dict(found)["params.titel"] == "is not a field here (the fields are: meta, title)"


def test_unresolvable_reference_in_a_schema_is_a_failed_precondition():
    with pytest.raises(FailedPrecondition):
        _validation.check_params({"$ref": "https://example.invalid/s.json"}, {})


def test_schema_check_reports_the_path_inside_the_schema():
    found = _validation.check_schema({"properties": {"a": {"type": "nope"}}}, "method.input_schema",
                                     "params")
    assert [f for f, _ in found] == ["method.input_schema.properties.a.type"]
    assert _validation.check_schema({}, "x", "params") == []


@pytest.mark.parametrize(("schema", "field"), [
    ({"type": "string"}, "x.type"), ({"type": ["array", "null"]}, "x.type"),
    ({"const": 3}, "x.const"), ({"enum": ["a", None]}, "x.enum"),
    ({"$defs": {"S": {"type": "integer"}}, "$ref": "#/$defs/S"}, "x.$defs.S.type"),
    ({"anyOf": [{"type": "string"}, {"type": "null"}]}, "x.anyOf"),
    ({"allOf": [{"type": "object"}, {"type": "array"}]}, "x.allOf[1].type"),
    ({"allOf": [{"type": "object"}, False]}, "x.allOf[1]"),
])
def test_a_schema_no_object_can_meet_is_refused(schema, field):
    [(where, description)] = _object_schemas.object_problems(schema, "x", "params")
    assert where == field
    assert description.endswith(": params are always a JSON object "
                                "(a google.protobuf.Struct)")


@pytest.mark.parametrize("schema", [
    {}, {"properties": {"a": {"type": "string"}}}, {"type": ["object", "null"]},
    {"$defs": {"M": {"type": "object"}}, "$ref": "#/$defs/M"}, {"$ref": "#"},
    {"anyOf": [{"type": "object"}, {"type": "null"}]}, {"enum": [{"a": 1}, 2]},
    {"not": {"type": "object"}},  # not judged: refused only where it is certain
])
def test_a_schema_some_object_may_meet_is_accepted(schema):
    assert _object_schemas.object_problems(schema, "x", "params") == []
