"""ParamsValidator: a check that changes nothing and fetches nothing."""

from __future__ import annotations

import copy

import pytest

from baton_core import FailedPrecondition, ParamsValidator


def test_validation_leaves_the_params_it_checks_as_they_were():
    # fastjsonschema fills in defaults unless told not to; a workflow's cached
    # definition was changed that way, and its request ids stopped matching.
    schema = {"type": "object", "properties": {
        "value": {"type": "string", "default": "x"},
        "inner": {"type": "object", "properties": {"n": {"type": "integer", "default": 1}}}}}
    params = {"inner": {}}
    before = copy.deepcopy(params)
    assert ParamsValidator(schema).violations(params) == []
    assert params == before


def test_a_stored_schema_referring_outside_itself_is_unusable_not_fetched():
    # The registry refuses such schemas now; one stored before is refused at use.
    schema = {"type": "object", "properties": {"a": {"$ref": "http://127.0.0.1:9/s.json"}}}
    validator = ParamsValidator(schema)
    with pytest.raises(FailedPrecondition) as caught:
        validator.violations({"a": "x"})
    assert caught.value.reason == "SCHEMA_UNUSABLE"
    assert "outside the schema" in str(caught.value)


def test_pydantic_schemas_with_definitions_keep_the_fast_path():
    from pydantic import BaseModel

    class Inner(BaseModel):
        city: str

    class Outer(BaseModel):
        inner: Inner
        title: str = "t"

    validator = ParamsValidator(Outer.model_json_schema())
    assert validator._fast is not None
    assert validator.violations({"inner": {"city": "Oslo"}}) == []
    assert [f for f, _ in validator.violations({"inner": {"city": 3}})] == ["params.inner.city"]


def test_a_violation_inside_an_optional_model_names_its_own_field():
    from pydantic import BaseModel, Field

    class Inner(BaseModel):
        city: str = Field(min_length=1)

    class Outer(BaseModel):
        inner: Inner | None = None

    validator = ParamsValidator(Outer.model_json_schema())
    assert validator.violations({"inner": {"city": ""}}) == [
        ("params.inner.city", "'' should be non-empty")]
    assert validator.violations({"inner": None}) == []
    # When no branch fits the value's type, the anyOf itself is the violation.
    [(field, description)] = validator.violations({"inner": 5})
    assert field == "params.inner" and "not valid under any of the given schemas" in description


def test_patterns_are_matched_in_linear_time():
    # With Python's re this takes minutes (exponential backtracking).
    validator = ParamsValidator({"type": "object", "properties": {
        "name": {"type": "string", "pattern": "^(a+)+$"}},
        "patternProperties": {"^(x+)+$": {"type": "integer"}}})
    [(field, description)] = validator.violations({"name": "a" * 5000 + "!"})
    assert field == "params.name" and "does not match" in description
    assert validator.violations({"name": "aaa"}) == []
    assert [f for f, _ in validator.violations({"xxxx": "not an int"})] == ["params.xxxx"]


def test_a_pattern_that_needs_backtracking_is_refused():
    from baton_core import schema_problems

    schema = {"type": "object", "properties": {"a": {"type": "string",
                                                     "pattern": "(a)\\1"}}}
    [(field, description)] = schema_problems(schema)
    assert field == "input_schema.properties.a.pattern"
    assert "linear time" in description
