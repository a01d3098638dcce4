"""Services may start in any order, as they do in Kubernetes."""

from __future__ import annotations

import asyncio
import sys
import time

import grpc

from baton.orchestrator.v1 import orchestrator_pb2, orchestrator_pb2_grpc
from baton_cli._process import ChildProcess
from baton_core import constants as c
from baton_core import dict_to_struct, free_port

# Seconds, after the 5 s the orchestrator itself waits for its registry when starting.
REGISTRY_LATE_BY = 4.0


async def test_an_orchestrator_started_before_its_registry_dispatches_soon_after_it_is_up(
        redis_url, tmp_path):
    addrs = {kind: f"127.0.0.1:{free_port()}"
             for kind in ("registry", "sessions", "orchestrator", "worker")}
    env = {c.ENV_DATA_DIR: str(tmp_path), c.ENV_REDIS_URL: redis_url, c.ENV_AUTH: "off",
           c.ENV_REGISTRY_ADDR: addrs["registry"], c.ENV_SESSIONS_ADDR: addrs["sessions"],
           c.ENV_ORCHESTRATOR_ADDR: addrs["orchestrator"]}
    children: list[ChildProcess] = []

    def start(kind: str) -> None:
        child = ChildProcess.service(kind, kind, {**env, c.ENV_LISTEN: addrs[kind]},
                                     tmp_path / f"{kind}.log", addrs[kind])
        children.append(child)
        child.start()

    request = orchestrator_pb2.DispatchRequest(operation="demo.echo",
                                               params=dict_to_struct({"value": "late"}))
    try:
        await asyncio.to_thread(start, "sessions")
        await asyncio.to_thread(start, "orchestrator")
        async with grpc.aio.insecure_channel(addrs["orchestrator"]) as channel:
            orchestrator = orchestrator_pb2_grpc.OrchestratorStub(channel)
            # Meanwhile its registry channel keeps failing, and its backoff grows.
            until = time.monotonic() + REGISTRY_LATE_BY
            while time.monotonic() < until:
                try:
                    await orchestrator.Dispatch(request, timeout=2)
                    raise AssertionError("dispatched without a registry")
                except grpc.aio.AioRpcError as exc:
                    assert exc.code() in (grpc.StatusCode.NOT_FOUND,
                                          grpc.StatusCode.UNAVAILABLE), exc
                await asyncio.sleep(0.5)
            await asyncio.to_thread(start, "registry")
            worker = ChildProcess("worker", [sys.executable, "-m",
                                             "baton_examples.casefile_worker"],
                                  {**env, c.ENV_WORKER_LISTEN: addrs["worker"]},
                                  tmp_path / "worker.log", addrs["worker"])
            children.append(worker)
            await asyncio.to_thread(worker.start)
            ready = time.monotonic()
            while True:
                try:
                    reply = await orchestrator.Dispatch(request, timeout=2)
                    break
                except grpc.aio.AioRpcError:
                    # Within gRPC's default reconnect backoff this could take minutes.
                    assert time.monotonic() - ready < 8.0, "the registry was not found again"
                    await asyncio.sleep(0.1)
        assert reply.result.fields["value"].string_value == "late"
    finally:
        for child in reversed(children):
            await asyncio.to_thread(child.stop)
