"""Losing a worker: Dispatch answers UNAVAILABLE within its deadline, never hangs."""

from __future__ import annotations

import time
from pathlib import Path

import grpc
import pytest

from baton_core import free_port, from_rpc_error, struct_to_dict

from .test_dispatch import dispatch_request, wait_for_method

PING = str(Path(__file__).with_name("ping_worker.py"))


async def test_killed_worker_makes_dispatch_unavailable_within_the_deadline(
        orchestrator, registry, platform):
    name = f"ping.p{free_port()}"
    listen = f"127.0.0.1:{free_port()}"
    worker = platform.start_worker(name, [PING, listen, name], {}, listen)
    await wait_for_method(registry, name)
    reply = await orchestrator.Dispatch(dispatch_request(name, {"text": "hi"}), timeout=5)
    assert struct_to_dict(reply.result)["pid"] == worker.pid

    worker.kill()
    started = time.monotonic()
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await orchestrator.Dispatch(dispatch_request(name, {"text": "hi"}), timeout=3)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert time.monotonic() - started < 3

    # Once the lease lapses the registry marks the endpoint unavailable and the
    # orchestrator stops choosing it: the answer is immediate and says why.
    deadline = time.monotonic() + 10
    while True:
        started = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await orchestrator.Dispatch(dispatch_request(name, {"text": "hi"}), timeout=3)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        if from_rpc_error(info.value).reason == "NO_LIVE_WORKER":
            assert time.monotonic() - started < 0.5
            break
        assert time.monotonic() < deadline, "lease never lapsed"


async def test_two_workers_share_a_method_and_survivor_takes_over(
        orchestrator, registry, platform):
    name = f"ping.p{free_port()}"
    pids = set()
    workers = []
    for _ in range(2):
        listen = f"127.0.0.1:{free_port()}"
        workers.append(platform.start_worker(f"{name}-{len(workers)}", [PING, listen, name], {},
                                             listen))
    await wait_for_method(registry, name)
    for _ in range(40):
        reply = await orchestrator.Dispatch(dispatch_request(name, {}), timeout=5)
        pids.add(struct_to_dict(reply.result)["pid"])
        if len(pids) == 2:
            break
    assert pids == {w.pid for w in workers}

    workers[0].kill()
    # UNAVAILABLE from the dead one is retried on the survivor.
    for _ in range(5):
        reply = await orchestrator.Dispatch(dispatch_request(name, {}), timeout=5)
        assert struct_to_dict(reply.result)["pid"] == workers[1].pid


async def test_a_worker_restarted_on_its_address_is_reached_again(orchestrator, registry,
                                                                  platform):
    # The orchestrator holds long-lived OpenChannel streams to the first process;
    # they break with it, and the next calls open new ones to its successor.
    name = f"ping.p{free_port()}"
    listen = f"127.0.0.1:{free_port()}"
    first = platform.start_worker(f"{name}-first", [PING, listen, name], {}, listen)
    await wait_for_method(registry, name)
    for _ in range(3):
        reply = await orchestrator.Dispatch(dispatch_request(name, {}), timeout=5)
        assert struct_to_dict(reply.result)["pid"] == first.pid
    first.kill()
    second = platform.start_worker(f"{name}-second", [PING, listen, name], {}, listen)
    deadline = time.monotonic() + 15
    while True:
        try:
            reply = await orchestrator.Dispatch(dispatch_request(name, {}), timeout=3)
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.UNAVAILABLE, exc
        else:
            break
        assert time.monotonic() < deadline, "the restarted worker was never reached"
    assert struct_to_dict(reply.result)["pid"] == second.pid
    for _ in range(3):  # and it stays reachable
        reply = await orchestrator.Dispatch(dispatch_request(name, {}), timeout=5)
        assert struct_to_dict(reply.result)["pid"] == second.pid
