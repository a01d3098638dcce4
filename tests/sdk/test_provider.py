"""MethodProvider.Invoke, called over a real port: results, errors and deadlines."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from baton_core import (
    DeadlineExceeded,
    Internal,
    InvalidArgument,
    NotFound,
    Unavailable,
    constants,
    free_port,
    struct_to_dict,
)
from baton_sdk import METHOD_FAILED, InvocationContext, MethodDefinition, method

pytestmark = pytest.mark.timeout(10)


class Order(BaseModel):
    item: str = Field(min_length=1)
    quantity: int = Field(ge=1)
    tags: list[str] = []


class Placed(BaseModel):
    summary: str
    context: dict


@method("shop.order", version="1.2.0", description="Places an order.")
async def order(params: Order, ctx: InvocationContext) -> Placed:
    return Placed(summary=f"{params.quantity} x {params.item}", context={
        "method": ctx.method, "version": ctx.version, "session_id": ctx.session_id,
        "run_id": ctx.run_id, "step_id": ctx.step_id, "attempt": ctx.attempt,
        "idempotency_key": ctx.idempotency_key, "actor": ctx.actor,
        "has_deadline": ctx.deadline is not None})


class Empty(BaseModel):
    pass


class Boom(BaseModel):
    message: str = "boom"


@method("shop.explode", description="Raises RuntimeError.")
async def explode(params: Boom) -> Empty:
    raise RuntimeError(params.message)


@method("shop.shrug", description="Raises ValueError without a message.")
async def shrug(params: Empty) -> Empty:
    raise ValueError()


class OutOfStock(Exception):
    grpc_code = "UNAVAILABLE"


@method("shop.out_of_stock", description="Raises an exception that declares its code.")
async def out_of_stock(params: Empty) -> Empty:
    raise OutOfStock("no stock left")


@method("shop.missing", description="Raises a BatonError.")
async def missing(params: Empty) -> Empty:
    raise NotFound("no such order", reason="ORDER_NOT_FOUND", metadata={"order": "o1"})


@method("shop.quit", description="Raises SystemExit.")
async def quit_(params: Empty) -> Empty:
    raise SystemExit(3)


@method("shop.interrupt", description="Raises KeyboardInterrupt.")
async def interrupt(params: Empty) -> Empty:
    raise KeyboardInterrupt


class Bail(BaseException):
    """Not an Exception, like KeyboardInterrupt and SystemExit."""


@method("shop.bail", description="Raises a BaseException of its own.")
async def bail(params: Empty) -> Empty:
    raise Bail("no more")


@method("shop.cancel_inside", description="Lets out the CancelledError of a task it awaited.")
async def cancel_inside(params: Empty) -> Empty:
    inner = asyncio.create_task(asyncio.sleep(10))
    inner.cancel()
    await inner
    return Empty()


@method("shop.call_down", description="Lets out the error of a gRPC call it made.")
async def call_down(params: Empty) -> Empty:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{free_port()}") as channel:
        await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(),
                                                        timeout=2)
    return Empty()


@method("shop.bad_result", description="Returns a result that breaks its model.")
async def bad_result(params: Empty) -> Placed:
    return {"summary": 3}  # type: ignore[return-value]  # on purpose: the test is the refusal


class Counted(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel)

    casefile_id: str
    note_count: int = Field(serialization_alias="notes")


@method("shop.count", description="Returns a model whose fields have aliases.")
async def count(params: Empty) -> Counted:
    return Counted(casefileId="cf1", noteCount=2)


class CountedWithSecrets(Counted):
    model_config = ConfigDict(extra="allow")

    owner_password: str


@method("shop.count_more", description="Returns a subclass of its output model.")
async def count_more(params: Empty) -> Counted:
    return CountedWithSecrets(casefileId="cf1", noteCount=2, ownerPassword="hunter2",
                              internal_note="not for callers")


class Reading(BaseModel):
    values: list[float]


@method("shop.measure", description="Returns NaN inside its result.")
async def measure(params: Empty) -> Reading:
    return Reading(values=[1.0, float("nan"), *[float("inf")] * 10_000])


class Nap(BaseModel):
    seconds: float


class Sleeper:
    """Records whether its sleep was cancelled."""

    def __init__(self) -> None:
        self.cancelled = asyncio.Event()
        self.remaining: float | None = None

    @method("shop.nap", description="Sleeps.", timeout=0.2)
    async def nap(self, params: Nap, ctx: InvocationContext) -> Empty:
        self.remaining = ctx.time_remaining()
        try:
            await asyncio.sleep(params.seconds)
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        return Empty()


@pytest.fixture
async def shop(start_worker, provider_client):
    sleeper = Sleeper()
    worker = await start_worker([order, explode, shrug, out_of_stock, missing, bad_result,
                                 sleeper.nap, quit_, interrupt, bail, cancel_inside, measure,
                                 call_down, count, count_more])
    return provider_client(worker), sleeper, worker


async def test_invoke_validates_params_and_returns_the_result(shop):
    client, _, _ = shop
    ctx = InvocationContext(session_id="s1", run_id="r1", step_id="st1", attempt=2,
                            idempotency_key="k1", actor="alice")
    reply = await client.invoke("shop.order", {"item": "tea", "quantity": 2},
                                context=ctx, timeout=5)
    result = struct_to_dict(reply.result)
    assert result["summary"] == "2 x tea"
    assert result["context"] == {
        "method": "shop.order", "version": "1.2.0", "session_id": "s1", "run_id": "r1",
        "step_id": "st1", "attempt": 2, "idempotency_key": "k1", "actor": "alice",
        "has_deadline": True}


async def test_attempt_defaults_to_one(shop):
    client, _, _ = shop
    reply = await client.invoke("shop.order", {"item": "tea", "quantity": 1})
    assert struct_to_dict(reply.result)["context"]["attempt"] == 1


async def test_bad_params_get_invalid_argument_with_every_violation(shop):
    client, _, _ = shop
    with pytest.raises(InvalidArgument) as caught:
        await client.invoke("shop.order", {"item": "", "quantity": 0, "tags": ["ok", 7]})
    fields = [field for field, _ in caught.value.violations]
    assert fields == ["params.item", "params.quantity", "params.tags[1]"]
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.reason == "INVALID_PARAMS"  # as when the orchestrator refuses them
    assert "params.item" in caught.value.message


async def test_missing_params_are_violations_too(shop):
    client, _, _ = shop
    with pytest.raises(InvalidArgument) as caught:
        await client.invoke("shop.order", {})
    assert [f for f, _ in caught.value.violations] == ["params.item", "params.quantity"]


async def test_raised_exception_becomes_internal_with_its_message_and_error_info(shop):
    client, _, _ = shop
    with pytest.raises(Internal) as caught:
        await client.invoke("shop.explode", {"message": "boom"})
    err = caught.value
    assert err.code == grpc.StatusCode.INTERNAL
    assert err.message == "boom"
    assert err.reason == METHOD_FAILED
    assert err.metadata == {"exception": "RuntimeError"}


async def test_exception_without_a_message_says_so_and_still_names_its_type(shop):
    client, _, _ = shop
    with pytest.raises(Internal) as caught:
        await client.invoke("shop.shrug", {})
    assert caught.value.message == "ValueError raised with no message"
    assert caught.value.reason == METHOD_FAILED
    assert caught.value.metadata == {"exception": "ValueError"}


async def test_what_a_method_lets_out_never_stops_the_worker_or_hangs_the_caller(shop):
    client, _, _ = shop
    started = time.monotonic()
    for name, exception, message in (
            ("shop.quit", "SystemExit", "method shop.quit exited with SystemExit(3)"),
            ("shop.interrupt", "KeyboardInterrupt",
             "method shop.interrupt raised KeyboardInterrupt()"),
            ("shop.bail", "Bail", "method shop.bail raised Bail('no more')"),
            ("shop.cancel_inside", "CancelledError",
             "method shop.cancel_inside raised CancelledError()")):
        with pytest.raises(Internal) as caught:
            await client.invoke(name, {}, timeout=5)
        assert (caught.value.message, caught.value.reason, caught.value.metadata) == (
            message, METHOD_FAILED, {"exception": exception})
    assert time.monotonic() - started < 2  # answered, not left to the deadline
    # A message too long for a status's trailers is cut, not a transport error.
    with pytest.raises(Internal) as caught:
        await client.invoke("shop.explode", {"message": "x" * 100_000})
    assert caught.value.message == "x" * 2000 + "…"
    placed = await client.invoke("shop.order", {"item": "a", "quantity": 1})  # still serving
    assert struct_to_dict(placed.result)["summary"] == "1 x a"


async def test_failed_grpc_call_of_the_method_says_what_failed(shop):
    client, _, _ = shop
    with pytest.raises(Internal) as caught:
        await client.invoke("shop.call_down", {}, timeout=5)
    assert caught.value.message.startswith("UNAVAILABLE: failed to connect")
    assert caught.value.metadata == {"exception": "AioRpcError"}


async def test_exception_may_declare_its_status_code(shop):
    client, _, _ = shop
    with pytest.raises(Unavailable) as caught:
        await client.invoke("shop.out_of_stock", {})
    assert caught.value.message == "no stock left"
    assert caught.value.metadata == {"exception": "OutOfStock"}


async def test_baton_error_from_the_method_passes_through(shop):
    client, _, _ = shop
    with pytest.raises(NotFound) as caught:
        await client.invoke("shop.missing", {})
    assert caught.value.reason == "ORDER_NOT_FOUND"
    assert caught.value.metadata == {"order": "o1"}


async def test_result_that_breaks_the_output_model_is_internal(shop):
    client, _, _ = shop
    with pytest.raises(Internal) as caught:
        await client.invoke("shop.bad_result", {})
    assert caught.value.reason == "INVALID_RESULT"


async def test_result_uses_the_field_names_its_published_schema_gives(shop):
    client, _, _ = shop
    reply = await client.invoke("shop.count", {})
    published = MethodDefinition.from_callable(count).output_schema["properties"]
    assert struct_to_dict(reply.result) == {"casefileId": "cf1", "notes": 2}
    assert set(struct_to_dict(reply.result)) == set(published)


async def test_result_of_a_subclass_of_the_output_model_has_only_the_models_fields(shop):
    client, _, _ = shop
    reply = await client.invoke("shop.count_more", {})
    assert struct_to_dict(reply.result) == {"casefileId": "cf1", "notes": 2}


async def test_result_holding_nan_is_internal_naming_where(shop):
    # JSON has no NaN: passed on, it broke the HTTP gateway (UNKNOWN) and PostgreSQL.
    client, _, _ = shop
    with pytest.raises(Internal) as caught:
        await client.invoke("shop.measure", {})
    assert caught.value.reason == "INVALID_RESULT"
    assert "result.values[1]: nan is not a JSON number" in caught.value.message
    assert caught.value.message.endswith("(and 9998 more)")


async def test_unknown_method_or_version_is_not_found(shop):
    client, _, _ = shop
    with pytest.raises(NotFound) as caught:
        await client.invoke("shop.nothing", {})
    assert caught.value.reason == "METHOD_NOT_SERVED"
    with pytest.raises(NotFound) as caught:
        await client.invoke("shop.order", {"item": "a", "quantity": 1}, version="9.9.9")
    assert caught.value.reason == "VERSION_NOT_SERVED"


async def test_caller_deadline_cancels_the_method(shop):
    client, sleeper, _ = shop
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        await client.invoke("shop.nap", {"seconds": 30}, timeout=0.3)
    assert time.monotonic() - started < 2
    await asyncio.wait_for(sleeper.cancelled.wait(), 2)
    # The deadline travels as a grpc-timeout header, rounded up by a few ms.
    assert 0 < sleeper.remaining < 0.35


async def test_method_timeout_applies_when_the_caller_sets_no_deadline(shop, provider_client):
    _, sleeper, worker = shop
    client = provider_client(worker, timeout=None)
    with pytest.raises(DeadlineExceeded) as caught:
        await client.invoke("shop.nap", {"seconds": 30})
    assert "did not finish within 0.2s" in caught.value.message
    assert sleeper.cancelled.is_set()


async def test_worker_serves_health_and_lists_its_service(shop):
    _, _, worker = shop
    async with grpc.aio.insecure_channel(worker.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        reply = await health.Check(health_pb2.HealthCheckRequest(
            service=constants.PROVIDER_SERVICE))
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
