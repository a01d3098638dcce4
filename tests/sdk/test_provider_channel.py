"""MethodProvider.OpenChannel over a real port, and the orchestrator's client of it.

The wire protocol is driven by hand first (batches, ids, cancellations,
timeouts, draining); then `WorkerChannel` and `Invoker`, which the
orchestrator calls workers through, including the fallback to unary Invoke
for a worker that has no OpenChannel.
"""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from pydantic import BaseModel

from baton.provider.v1 import provider_pb2, provider_pb2_grpc
from baton.registry.v1 import registry_pb2
from baton_core import (
    BatonError,
    DeadlineExceeded,
    GrpcServer,
    Service,
    Unavailable,
    constants,
    dict_to_struct,
    from_status,
    struct_to_dict,
)
from baton_sdk import MethodProvider, method

pytest.importorskip("baton_orchestrator")
from baton_orchestrator._invoker import CallContext, Invoker  # noqa: E402
from baton_orchestrator._method_cache import CachedMethod  # noqa: E402
from baton_orchestrator._retry import Retry  # noqa: E402
from baton_orchestrator._worker_channel import WorkerChannel  # noqa: E402

pytestmark = pytest.mark.timeout(20)


class Number(BaseModel):
    n: int


class Nap(BaseModel):
    seconds: float


class Slept(BaseModel):
    slept: float


class Sleeper:
    """Methods that report, through events, when a nap starts, is cancelled, and has
    cleaned up after its cancellation (which takes `unwind` seconds)."""

    def __init__(self, unwind: float = 0.0) -> None:
        self.started = asyncio.Event()
        self.cancelled = asyncio.Event()
        self.unwound = asyncio.Event()
        self._unwind = unwind

    @method("chan.nap")
    async def nap(self, params: Nap) -> Slept:
        self.started.set()
        try:
            await asyncio.sleep(params.seconds)
        except asyncio.CancelledError:
            self.cancelled.set()
            if self._unwind:
                await asyncio.sleep(self._unwind)  # e.g. rolling back what it did
            self.unwound.set()
            raise
        return Slept(slept=params.seconds)


@method("chan.double")
async def double(params: Number) -> Number:
    return Number(n=params.n * 2)


@method("chan.fail")
async def fail(params: Number) -> Number:
    raise ValueError(f"no luck with {params.n}")


@method("chan.interrupt")
async def interrupt(params: Number) -> Number:
    raise KeyboardInterrupt


class Blob(BaseModel):
    data: str


@method("chan.huge")
async def huge(params: Number) -> Blob:
    return Blob(data="x" * params.n)


def invocation(invocation_id: int, name: str, params: dict,
               timeout: float | None = None) -> provider_pb2.Invocation:
    message = provider_pb2.Invocation(id=invocation_id, request=provider_pb2.InvokeRequest(
        method=name, params=dict_to_struct(params)))
    if timeout is not None:
        message.timeout.FromNanoseconds(int(timeout * 1e9))
    return message


async def completions(call, count: int) -> dict[int, provider_pb2.Completion]:
    found: dict[int, provider_pb2.Completion] = {}
    while len(found) < count:
        reply = await call.read()
        assert reply is not grpc.aio.EOF, f"stream ended after {len(found)} completions"
        found.update({c.id: c for c in reply.completions})
    return found


@pytest.fixture
async def sleeper():
    return Sleeper()


@pytest.fixture
async def worker(start_worker, sleeper):
    return await start_worker([double, fail, sleeper.nap, huge, interrupt])


@pytest.fixture
async def stub(worker):
    async with grpc.aio.insecure_channel(worker.address) as channel:
        yield provider_pb2_grpc.MethodProviderStub(channel)


async def test_one_batch_of_invocations_completes_each_by_its_id(stub):
    call = stub.OpenChannel()
    await call.write(provider_pb2.OpenChannelRequest(invocations=[
        invocation(7, "chan.double", {"n": 21}),
        invocation(8, "chan.double", {"n": "many"}),
        invocation(9, "chan.fail", {"n": 3}),
        invocation(10, "chan.missing", {}),
    ]))
    done = await completions(call, 4)
    assert struct_to_dict(done[7].response.result) == {"n": 42}
    bad = from_status(done[8].error)
    assert bad.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in bad.violations] == ["params.n"]
    failed = from_status(done[9].error)
    assert failed.code == grpc.StatusCode.INTERNAL and "no luck with 3" in failed.message
    assert failed.reason == "METHOD_FAILED"
    assert from_status(done[10].error).code == grpc.StatusCode.NOT_FOUND
    await call.done_writing()
    assert await call.read() is grpc.aio.EOF
    assert await call.code() == grpc.StatusCode.OK


async def test_keyboard_interrupt_of_a_method_fails_its_invocation_alone(stub):
    # It stopped the worker's event loop, and so the process, and every call with it.
    call = stub.OpenChannel()
    await call.write(provider_pb2.OpenChannelRequest(invocations=[
        invocation(1, "chan.interrupt", {"n": 1}), invocation(2, "chan.double", {"n": 2})]))
    done = await completions(call, 2)
    interrupted = from_status(done[1].error)
    assert (interrupted.code, interrupted.reason, interrupted.message) == (
        grpc.StatusCode.INTERNAL, "METHOD_FAILED",
        "method chan.interrupt raised KeyboardInterrupt()")
    await call.write(provider_pb2.OpenChannelRequest(
        invocations=[invocation(3, "chan.double", {"n": 3})]))
    assert struct_to_dict((await completions(call, 1))[3].response.result) == {"n": 6}
    await call.done_writing()
    assert await call.read() is grpc.aio.EOF


async def test_a_result_too_large_to_send_fails_alone_not_the_stream(stub, sleeper):
    # Written, it failed on the wire and took the stream down with every call on it,
    # as UNAVAILABLE, which callers retry (and so broke the stream again).
    call = stub.OpenChannel()
    await call.write(provider_pb2.OpenChannelRequest(invocations=[
        invocation(1, "chan.nap", {"seconds": 0.3}),
        invocation(2, "chan.huge", {"n": 17 * 2**20})]))
    done = await completions(call, 2)
    too_large = from_status(done[2].error)
    assert too_large.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert too_large.reason == "RESULT_TOO_LARGE"
    assert struct_to_dict(done[1].response.result) == {"slept": 0.3}
    await call.done_writing()
    assert await call.read() is grpc.aio.EOF
    assert await call.code() == grpc.StatusCode.OK


async def test_a_cancelled_id_cancels_the_running_method(stub, sleeper):
    call = stub.OpenChannel()
    await call.write(provider_pb2.OpenChannelRequest(
        invocations=[invocation(1, "chan.nap", {"seconds": 30})]))
    await asyncio.wait_for(sleeper.started.wait(), 5)
    await call.write(provider_pb2.OpenChannelRequest(cancelled_ids=[1]))
    await asyncio.wait_for(sleeper.cancelled.wait(), 5)
    # A cancelled invocation gets no completion; the stream ends cleanly.
    await call.done_writing()
    assert await asyncio.wait_for(call.read(), 5) is grpc.aio.EOF
    assert await call.code() == grpc.StatusCode.OK


async def test_a_dropped_channel_is_over_only_once_its_invocations_have_unwound(
        start_worker):
    # The call ended as soon as it cancelled them: the worker then stopped (and the
    # event loop could close) with the methods still running, which the loop killed
    # ("Task was destroyed but it is pending").
    sleeper = Sleeper(unwind=0.3)
    worker = await start_worker([sleeper.nap])
    async with grpc.aio.insecure_channel(worker.address) as channel:
        call = provider_pb2_grpc.MethodProviderStub(channel).OpenChannel()
        await call.write(provider_pb2.OpenChannelRequest(
            invocations=[invocation(1, "chan.nap", {"seconds": 30})]))
        await asyncio.wait_for(sleeper.started.wait(), 5)
        call.cancel()
    await worker.stop()
    assert sleeper.unwound.is_set()


async def test_each_invocation_keeps_its_own_timeout(stub, sleeper):
    call = stub.OpenChannel()
    await call.write(provider_pb2.OpenChannelRequest(invocations=[
        invocation(1, "chan.nap", {"seconds": 30}, timeout=0.2),
        invocation(2, "chan.double", {"n": 1}, timeout=5)]))
    done = await completions(call, 2)
    assert from_status(done[1].error).code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert sleeper.cancelled.is_set()
    assert struct_to_dict(done[2].response.result) == {"n": 2}
    call.cancel()


async def test_a_draining_worker_finishes_what_runs_and_refuses_new_invocations(worker, stub,
                                                                             sleeper):
    call = stub.OpenChannel()
    await call.write(provider_pb2.OpenChannelRequest(
        invocations=[invocation(1, "chan.nap", {"seconds": 0.5})]))
    await asyncio.wait_for(sleeper.started.wait(), 5)
    stopping = asyncio.create_task(worker.stop())
    await asyncio.sleep(0.1)
    await call.write(provider_pb2.OpenChannelRequest(
        invocations=[invocation(2, "chan.double", {"n": 1})]))
    done = await completions(call, 2)
    refused = from_status(done[2].error)
    assert (refused.code, refused.reason) == (grpc.StatusCode.UNAVAILABLE, "WORKER_DRAINING")
    assert struct_to_dict(done[1].response.result) == {"slept": 0.5}
    assert await asyncio.wait_for(call.read(), 5) is grpc.aio.EOF
    await asyncio.wait_for(stopping, 5)


@pytest.fixture
async def worker_channel(worker):
    async with grpc.aio.insecure_channel(worker.address) as channel:
        client = WorkerChannel(worker.address, provider_pb2_grpc.MethodProviderStub(channel),
                               lambda: ())
        yield client
        await client.close()


def request(name: str, params: dict) -> provider_pb2.InvokeRequest:
    return provider_pb2.InvokeRequest(method=name, params=dict_to_struct(params))


async def test_worker_channel_runs_many_invocations_at_once(worker_channel):
    replies = await asyncio.gather(*(
        worker_channel.invoke(request("chan.double", {"n": i}), 5) for i in range(200)))
    assert [struct_to_dict(r.result)["n"] for r in replies] == [2 * i for i in range(200)]


async def test_worker_channel_raises_the_workers_error(worker_channel):
    with pytest.raises(BatonError) as info:
        await worker_channel.invoke(request("chan.fail", {"n": 1}), 5)
    assert info.value.code == grpc.StatusCode.INTERNAL
    assert info.value.reason == "METHOD_FAILED"


async def test_worker_channel_deadline_cancels_the_method_on_the_worker(worker_channel, sleeper):
    with pytest.raises(DeadlineExceeded):
        await worker_channel.invoke(request("chan.nap", {"seconds": 30}), 0.3)
    await asyncio.wait_for(sleeper.cancelled.wait(), 5)
    # The channel goes on serving.
    reply = await worker_channel.invoke(request("chan.double", {"n": 4}), 5)
    assert struct_to_dict(reply.result) == {"n": 8}


async def test_cancelling_the_caller_cancels_the_method_on_the_worker(worker_channel, sleeper):
    task = asyncio.create_task(worker_channel.invoke(request("chan.nap", {"seconds": 30}), 60))
    await asyncio.wait_for(sleeper.started.wait(), 5)
    task.cancel()
    await asyncio.wait_for(sleeper.cancelled.wait(), 5)
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_stopped_worker_fails_pending_invocations_as_unavailable(worker,
                                                                       worker_channel):
    pending = asyncio.create_task(
        worker_channel.invoke(request("chan.nap", {"seconds": 30}), 60))
    await asyncio.sleep(0.2)
    worker.shutdown_grace = 0.2
    await worker.stop()
    with pytest.raises(Unavailable) as info:
        await asyncio.wait_for(pending, 5)
    assert info.value.reason == "WORKER_CHANNEL_CLOSED"


def cached(address: str, name: str) -> CachedMethod:
    return CachedMethod.build(registry_pb2.Method(name=name, version="", endpoints=[
        registry_pb2.Endpoint(address=address, worker_id="w",
                              state=registry_pb2.Endpoint.STATE_AVAILABLE)]))


async def test_invoker_falls_back_to_invoke_for_a_worker_without_open_channel():
    provider = MethodProvider([double])

    def only_invoke(servicer, server):
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
            constants.PROVIDER_SERVICE, {"Invoke": grpc.unary_unary_rpc_method_handler(
                servicer.Invoke,
                request_deserializer=provider_pb2.InvokeRequest.FromString,
                response_serializer=provider_pb2.InvokeResponse.SerializeToString)}),))

    server = GrpcServer("127.0.0.1:0", [Service(constants.PROVIDER_SERVICE, provider,
                                                only_invoke)])
    port = await server.start()
    invoker = Invoker()
    try:
        method = cached(f"127.0.0.1:{port}", "chan.double")
        deadline = time.monotonic() + 5
        for n in (1, 2):  # the second call goes straight to Invoke
            outcome = await invoker.invoke(method, {"n": n}, CallContext(), deadline)
            assert outcome.result == {"n": 2 * n}
        assert invoker._workers[f"127.0.0.1:{port}"].unsupported
    finally:
        await invoker.close()
        await server.stop(0)


async def test_a_call_a_stopping_worker_refuses_goes_to_another_whatever_the_policy(
        start_worker, sleeper):
    stopping = await start_worker([double, sleeper.nap])
    other = await start_worker([double])
    never = Retry(strategy="none", max_attempts=1)
    invoker = Invoker()
    alone = cached(stopping.address, "chan.double")
    # The orchestrator's stream to the worker is open before the worker stops, and
    # something in flight on it keeps the worker draining while the call comes.
    await invoker.invoke(alone, {"n": 1}, CallContext(), time.monotonic() + 5, never)
    nap = asyncio.create_task(invoker.invoke(cached(stopping.address, "chan.nap"),
                                             {"seconds": 1.0}, CallContext(),
                                             time.monotonic() + 5, never))
    await asyncio.wait_for(sleeper.started.wait(), 5)
    stop = asyncio.create_task(stopping.stop())
    await asyncio.sleep(0.1)
    if True:
        try:
            both = CachedMethod.build(registry_pb2.Method(name="chan.double", endpoints=[
                registry_pb2.Endpoint(address=a, worker_id=a,
                                      state=registry_pb2.Endpoint.STATE_AVAILABLE)
                for a in (stopping.address, other.address)]))
            outcome = await invoker.invoke(both, {"n": 3}, CallContext(),
                                           time.monotonic() + 5, never)
            assert (outcome.result, outcome.worker_address, outcome.attempts) == (
                {"n": 6}, other.address, 1)
            # With no other worker it is a failure like any other, for the policy to retry.
            with pytest.raises(Unavailable) as info:
                await invoker.invoke(alone, {"n": 3}, CallContext(), time.monotonic() + 5,
                                     never)
            assert info.value.reason in ("WORKER_DRAINING", "WORKER_UNREACHABLE")
            assert (await nap).result == {"slept": 1.0}  # what ran, finished
        finally:
            await invoker.close()
            await asyncio.wait_for(stop, 10)
