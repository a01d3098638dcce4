"""@method: validation of the decorated function and the definition it attaches."""

# The functions @method refuses here are signatures only (`...`), never called.
# mypy: allow-empty-bodies

from __future__ import annotations

import pytest
from pydantic import BaseModel, Field

from baton.registry.v1 import registry_pb2
from baton_core import duration_to_seconds, struct_to_dict
from baton_sdk import InvocationContext, MethodDefinition, RetryPolicy, method

pytestmark = pytest.mark.timeout(10)


class Greet(BaseModel):
    name: str = Field(min_length=1, description="Who to greet.")
    times: int = 1


class Greeting(BaseModel):
    text: str


@method("greet.say", version="2.1.0", tags=["demo", "greet", "demo"], timeout=5.0,
        retry=RetryPolicy(strategy="fixed", max_attempts=4, initial_delay=0.5),
        idempotent=True)
async def say(params: Greet, ctx: InvocationContext) -> Greeting:
    """Greets someone.

    More detail that is not part of the description.
    """
    return Greeting(text=f"hello {params.name}")


@method("greet.plain", description="Greets without context.")
async def plain(params: Greet) -> Greeting:
    return Greeting(text=params.name)


def test_schemas_are_derived_from_the_models():
    definition = MethodDefinition.from_callable(say)
    assert definition.input_schema == Greet.model_json_schema()
    assert definition.input_schema["required"] == ["name"]
    assert definition.output_schema["properties"]["text"]["type"] == "string"
    assert definition.input_model is Greet and definition.output_model is Greeting


def test_definition_carries_the_options_and_the_docstring_summary():
    definition = MethodDefinition.from_callable(say)
    assert (definition.name, definition.version, definition.domain) == (
        "greet.say", "2.1.0", "greet")
    assert definition.description == "Greets someone."
    assert definition.tags == ("demo", "greet")
    assert definition.timeout == 5.0 and definition.idempotent
    assert definition.retry == RetryPolicy(strategy="fixed", max_attempts=4, initial_delay=0.5)


def test_context_parameter_is_detected_from_the_signature():
    assert MethodDefinition.from_callable(say).takes_context
    assert not MethodDefinition.from_callable(plain).takes_context


async def test_decorated_function_is_returned_unchanged():
    assert (await plain(Greet(name="x"))).text == "x"


def test_definition_is_frozen():
    with pytest.raises(AttributeError):
        MethodDefinition.from_callable(say).name = "other.name"


def test_to_proto_carries_schemas_timeout_and_retry():
    message = MethodDefinition.from_callable(say).to_proto()
    assert message.name == "greet.say" and message.domain == "greet"
    assert list(message.tags) == ["demo", "greet"]
    assert struct_to_dict(message.input_schema) == Greet.model_json_schema()
    assert duration_to_seconds(message.default_timeout) == 5.0
    assert message.retry_policy.strategy == registry_pb2.RetryPolicy.STRATEGY_FIXED
    assert message.retry_policy.max_attempts == 4
    assert message.idempotent


class Notes:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    @method("notes.tag", description="Prefixes a name.")
    async def tag(self, params: Greet, ctx: InvocationContext) -> Greeting:
        return Greeting(text=f"{self.prefix}{params.name}")


async def test_bound_method_definition_calls_the_instance():
    definition = MethodDefinition.from_callable(Notes("#").tag)
    assert definition.takes_context
    result = await definition.fn(Greet(name="a"), InvocationContext())
    assert result.text == "#a"


def test_undecorated_function_has_no_definition():
    async def bare(params: Greet) -> Greeting: ...

    with pytest.raises(TypeError, match="not decorated"):
        MethodDefinition.from_callable(bare)


@pytest.mark.parametrize("name", ["Casefile.create", "casefile", "casefile..create", "1x.y", ""])
def test_bad_names_are_rejected(name):
    with pytest.raises(ValueError, match="bad method name"):
        method(name)


def test_bad_options_are_rejected():
    with pytest.raises(ValueError, match="version"):
        method("a.b", version="1 0")
    with pytest.raises(ValueError, match="tags"):
        method("a.b", tags="demo")
    with pytest.raises(ValueError, match="timeout"):
        method("a.b", timeout=0)
    with pytest.raises(ValueError, match="timeout"):  # beyond what a Duration can hold
        method("a.b", timeout=1e13)
    with pytest.raises(ValueError, match="tags"):
        method("a.b", tags=["t" * 300])
    with pytest.raises(ValueError, match="bad method name"):
        method("a." + "b" * 300)


class Unbounded(BaseModel):
    x: float = float("inf")


def test_a_schema_json_cannot_hold_is_refused_at_import():
    with pytest.raises(ValueError, match="Unbounded holds a number JSON cannot"):
        @method("a.unbounded")
        async def unbounded(params: Unbounded) -> Greeting: ...


def test_sync_function_is_rejected():
    with pytest.raises(TypeError, match="async"):
        @method("a.b")
        def sync(params: Greet) -> Greeting: ...


def test_annotations_must_be_pydantic_models():
    with pytest.raises(TypeError, match="params annotation"):
        @method("a.b")
        async def untyped(params: dict) -> Greeting: ...

    with pytest.raises(TypeError, match="return annotation"):
        @method("a.b")
        async def no_return(params: Greet): ...


def test_signature_must_be_params_and_optional_context():
    with pytest.raises(TypeError, match=r"\(params\) or"):
        @method("a.b")
        async def three(params: Greet, ctx: InvocationContext, extra: int) -> Greeting: ...

    with pytest.raises(TypeError, match=r"\(params\) or"):
        @method("a.b")
        async def keyword_only(*, params: Greet) -> Greeting: ...


def test_unresolvable_annotations_are_reported():
    with pytest.raises(TypeError, match="module level"):
        @method("a.b")
        async def local(params: LocalModel) -> Greeting: ...  # type: ignore[name-defined]  # noqa: F821


def test_retry_policy_round_trips_through_proto():
    policy = RetryPolicy(strategy="linear", max_attempts=5, initial_delay=0.25, max_delay=3.0,
                         multiplier=1.5, retryable_codes=("unavailable", "ABORTED"))
    assert policy.retryable_codes == ("UNAVAILABLE", "ABORTED")
    assert RetryPolicy.from_proto(policy.to_proto()) == policy
    assert RetryPolicy.from_proto(registry_pb2.RetryPolicy()) == RetryPolicy()
    assert RetryPolicy.never().to_proto().strategy == registry_pb2.RetryPolicy.STRATEGY_NONE


@pytest.mark.parametrize("kwargs", [
    {"strategy": "random"}, {"max_attempts": 0}, {"initial_delay": -1}, {"multiplier": 0.5},
    {"retryable_codes": ("NOPE",)}, {"initial_delay": 20}, {"retryable_codes": "UNAVAILABLE"},
])
def test_retry_policy_rejects_bad_values(kwargs):
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)


def test_retry_policy_refuses_a_code_named_twice():
    """The registry refuses such a policy, so the SDK says so before registering."""
    with pytest.raises(ValueError, match="names UNAVAILABLE more than once"):
        RetryPolicy(retryable_codes=("UNAVAILABLE", "ABORTED", "unavailable"))
