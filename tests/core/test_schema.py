"""ParamsValidator: a check that changes nothing and fetches nothing."""

from __future__ import annotations

import copy
from typing import Literal

import pytest
from pydantic import BaseModel, Field

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
    assert validator.violations({"inner": 5}) == [("params.inner", "must be an object or null")]


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


def test_every_problem_the_meta_schema_finds_is_reported_with_its_path():
    from baton_core import schema_problems

    schema = {"type": "object", "required": "a", "properties": {
        "a": {"type": "strin"}, "b": {"minLength": -1}, "c": {"type": ["string", 3]}}}
    found = schema_problems(schema)
    assert [f for f, _ in found] == [
        "input_schema.properties.a.type", "input_schema.properties.b.minLength",
        "input_schema.properties.c.type", "input_schema.required"]
    described = dict(found)
    assert described["input_schema.properties.a.type"].startswith("'strin' is not one of")
    assert "3 is not one of" in described["input_schema.properties.c.type"]


def test_a_long_pattern_is_refused_at_registration_but_a_stored_one_still_works():
    from baton_core import schema_problems

    pattern = "^" + "a?" * 600 + "$"
    schema = {"type": "object", "properties": {"a": {"type": "string", "pattern": pattern}},
              "patternProperties": {"x" * 1001: {}}}
    found = schema_problems(schema)
    assert [f for f, _ in found] == ["input_schema.patternProperties." + "x" * 1001,
                                     "input_schema.properties.a.pattern"]
    assert "at most 1,000 characters" in found[0][1]
    assert ParamsValidator(schema).violations({"a": "aa"}) == []


def _optional_int_validator() -> ParamsValidator:
    from pydantic import BaseModel

    class In(BaseModel):
        opt: int | None = None
        name: str | None = None

    return ParamsValidator(In.model_json_schema())


def test_a_value_of_no_alternative_type_says_which_types_are_allowed():
    validator = _optional_int_validator()
    assert validator.violations({"opt": 1.5}) == [("params.opt", "must be an integer or null")]
    assert validator.violations({"opt": 2, "name": ["x"]}) == [
        ("params.name", "must be a string or null")]
    literal = ParamsValidator({"type": "object", "properties": {"mode": {"anyOf": [
        {"enum": ["fast", "slow"], "type": "string"}, {"type": "boolean"}, {"type": "null"}]}}})
    assert literal.violations({"mode": 3}) == [
        ("params.mode", 'must be "fast", "slow", a boolean or null')]


def test_a_value_several_alternatives_could_take_names_the_closest_failure():
    validator = ParamsValidator({"type": "object", "properties": {"code": {"anyOf": [
        {"type": "string", "maxLength": 3}, {"type": "string", "pattern": "^x"}]}}})
    [(field, description)] = validator.violations({"code": "abcdef"})
    assert field == "params.code"
    assert description.startswith("fits none of the 2 alternatives (closest: ")
    assert "'abcdef'" in description


def test_a_value_fitting_more_than_one_of_a_one_of_says_so():
    validator = ParamsValidator({"type": "object", "properties": {"n": {"oneOf": [
        {"type": "integer"}, {"minimum": 0}]}}})
    assert validator.violations({"n": 5}) == [
        ("params.n", "fits more than one of the alternatives, and must fit exactly one")]
    assert validator.violations({"n": -5}) == []


def test_a_schema_whose_references_branch_exponentially_is_refused_at_once():
    import time

    from baton_core import schema_problems

    def chain(depth: int) -> dict:
        defs: dict[str, dict[str, object]] = {
            f"D{i}": {"anyOf": [{"$ref": f"#/$defs/D{i + 1}"}, {"$ref": f"#/$defs/D{i + 1}"}]}
            for i in range(depth)}
        defs[f"D{depth}"] = {"type": "string"}
        return {"type": "object", "properties": {"x": {"$ref": "#/$defs/D0"}}, "$defs": defs}

    started = time.perf_counter()
    problems = schema_problems(chain(30), "input_schema")  # 2^30 visits per value
    assert time.perf_counter() - started < 1.0
    assert [f for f, _ in problems] == ["input_schema"]
    assert "more than 1,000 subschemas at one place" in problems[0][1]
    # A few levels stay well within the bound, and a recursive tree is fine.
    assert schema_problems(chain(3), "input_schema") == []
    tree = {"type": "object", "properties": {
        "children": {"type": "array", "items": {"$ref": "#"}},
        "left": {"$ref": "#"}, "right": {"$ref": "#"}}}
    assert schema_problems(tree, "input_schema") == []


# An order system's models, nested as such schemas are (an estimate that counted
# every nested model's visits found more than 10,000 for Archive and refused it).
class Money(BaseModel):
    amount: str
    currency: str


class Address(BaseModel):
    line1: str
    line2: str | None = None
    city: str
    postal_code: str | None = None
    country: str


class Contact(BaseModel):
    name: str
    email: str | None = None
    address: Address | None = None


class Product(BaseModel):
    sku: str
    price: Money
    sale_price: Money | None = None
    tags: list[str] = []


class LineItem(BaseModel):
    product: Product
    quantity: int
    unit_price: Money
    total: Money
    tax: Money | None = None


class Card(BaseModel):
    kind: Literal["card"]
    last4: str
    billing: Address


class Bank(BaseModel):
    kind: Literal["bank"]
    iban: str
    holder: Contact


class Shipment(BaseModel):
    carrier: str
    to: Contact
    items: list[LineItem]
    cost: Money
    insurance: Money | None = None


class Order(BaseModel):
    id: str
    customer: Contact
    billing: Address
    shipping: Address | None = None
    items: list[LineItem]
    total: Money
    payment: Card | Bank = Field(discriminator="kind")
    shipments: list[Shipment] = []
    refunds: list[Money] | None = None


class Batch(BaseModel):
    orders: list[Order]
    previous: Order | None = None
    corrected: Order | None = None
    source: Order | Shipment | None = None


class Page(BaseModel):
    batches: list[Batch]
    current: Batch
    previous: Batch | None = None


class Report(BaseModel):
    current: Page
    previous: Page | None = None


class Archive(BaseModel):
    latest: Report
    previous: Report | None = None
    reports: list[Report] = []


def test_ordinary_nested_models_are_not_taken_for_branching_schemas():
    from baton_core import schema_problems

    for model in (Order, Batch, Page, Report, Archive):
        assert schema_problems(model.model_json_schema(), "input_schema") == [], model
