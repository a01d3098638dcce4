"""Which worker a call goes to: a retry avoids the endpoint that just failed, and a
worker registered for another version of the method is passed over."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest
from pydantic import BaseModel

from baton.orchestrator.v1 import orchestrator_pb2
from baton.registry.v1 import registry_pb2
from baton_core import Unavailable, dict_to_struct, from_rpc_error, struct_to_dict
from baton_sdk import RetryPolicy, Worker, method

from .conftest import until


class In(BaseModel):
    n: int = 0


class Out(BaseModel):
    by: str


def serving(name: str, version: str, answer: str, *, fail: bool = False,
            retry: RetryPolicy | None = None):
    @method(name, version=version, retry=retry or RetryPolicy.never())
    async def fn(params: In) -> Out:
        if fail:
            raise Unavailable(f"{answer} is failing on purpose")
        return Out(by=answer)

    return fn


@pytest.fixture
async def workers(control, auth_keys):
    started: list[Worker] = []

    async def start(*methods) -> Worker:
        worker = Worker(list(methods), registry_addr=control.addrs["registry"],
                        token=auth_keys.token("router", ["worker"]), lease_ttl=5.0)
        await worker.start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        await worker.stop()


async def endpoints(control, admin, name: str) -> int:
    reply = await control.registry.GetMethod(registry_pb2.GetMethodRequest(name=name),
                                             metadata=admin)
    return sum(e.state == registry_pb2.Endpoint.STATE_AVAILABLE for e in reply.method.endpoints)


def call(name: str) -> orchestrator_pb2.DispatchRequest:
    return orchestrator_pb2.DispatchRequest(operation=name, params=dict_to_struct({"n": 1}))


async def test_a_retry_goes_to_another_worker_than_the_one_that_failed(
        control, workers, admin):
    name = f"r{uuid.uuid4().hex[:8]}.flaky"
    retry = RetryPolicy(strategy="fixed", max_attempts=2, initial_delay=0.01)
    await workers(serving(name, "1.0.0", "bad", fail=True, retry=retry))
    await workers(serving(name, "1.0.0", "good", retry=retry))

    async def both_known() -> bool:
        if await endpoints(control, admin, name) != 2:
            return False
        try:
            reply = await control.a.dispatch.Dispatch(call(name), metadata=admin)
        except grpc.aio.AioRpcError as exc:
            # The registry has both, but replica A's copy may still hold only the bad
            # one, which fails both attempts.
            assert exc.code() == grpc.StatusCode.UNAVAILABLE, exc
            return False
        return reply.metadata.attempts == 2  # the bad one first: a rotation of two

    await until(both_known, what="replica A knows both workers")
    # Concurrent calls share the rotation; each call's retry still avoids its failure.
    replies = await asyncio.gather(*(control.a.dispatch.Dispatch(call(name), metadata=admin)
                                     for _ in range(40)))
    assert {struct_to_dict(r.result)["by"] for r in replies} == {"good"}
    assert {r.metadata.attempts for r in replies} <= {1, 2}


async def test_a_worker_of_another_version_is_passed_over(control, workers, admin):
    name = f"v{uuid.uuid4().hex[:8]}.versioned"
    await workers(serving(name, "1.0.0", "old"))
    new = await workers(serving(name, "2.0.0", "new"))

    async def both_known() -> bool:
        if await endpoints(control, admin, name) != 2:
            return False
        reply = await control.a.dispatch.Dispatch(call(name), metadata=admin)
        return reply.metadata.method_version == "2.0.0"

    await until(both_known, what="replica A knows version 2.0.0 and both workers")
    replies = [await control.a.dispatch.Dispatch(call(name), metadata=admin) for _ in range(6)]
    assert {(struct_to_dict(r.result)["by"], r.metadata.attempts) for r in replies} == {
        ("new", 1)}

    await new.stop()  # left: a worker of 1.0.0, which the registry no longer describes
    refused: list[grpc.aio.AioRpcError] = []

    async def refused_clearly() -> bool:
        try:
            await control.a.dispatch.Dispatch(call(name), metadata=admin)
        except grpc.aio.AioRpcError as exc:
            refused.append(exc)
            return from_rpc_error(exc).reason == "NO_LIVE_WORKER"
        return False

    await until(refused_clearly, timeout=15, what="calls are refused as NO_LIVE_WORKER")
    error = refused[-1]
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert f"no live worker serves {name} version 2.0.0" in error.details()
    assert "serve another version" in error.details()
