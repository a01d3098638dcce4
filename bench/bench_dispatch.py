"""Dispatch of a trivial method vs a bare grpc.aio echo with the same payload.

A third row, a relay with none of Baton's logic over the same worker channel
(`relay_server.py`), shows the floor of Dispatch's two hops on the machine."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc

from baton.orchestrator.v1 import orchestrator_pb2, orchestrator_pb2_grpc
from baton_core import dict_to_struct, free_port

sys.path.insert(0, str(Path(__file__).parent))
from _harness import BenchPlatform, measure  # noqa: E402

PAYLOAD = {"value": "hello"}


async def run(platform: BenchPlatform, echo_addr: str, relay_addr: str) -> list:
    request = orchestrator_pb2.DispatchRequest(operation="demo.echo",
                                               params=dict_to_struct(PAYLOAD))
    raw = request.params.SerializeToString()
    async with grpc.aio.insecure_channel(echo_addr) as echo_ch, \
            grpc.aio.insecure_channel(relay_addr) as relay_ch, \
            grpc.aio.insecure_channel(platform.addrs["orchestrator"]) as orch_ch:
        echo = echo_ch.unary_unary("/bench.Echo/Echo")
        relay = orchestrator_pb2_grpc.OrchestratorStub(relay_ch)
        orch = orchestrator_pb2_grpc.OrchestratorStub(orch_ch)
        # Measured with auth on, as deployed: a bearer token on every call.
        metadata = (("authorization", f"Bearer {platform.token('user')}"),)
        for _ in range(100):  # wait until the worker's method is in the cache
            try:
                await orch.Dispatch(request, timeout=5, metadata=metadata)
                break
            except grpc.aio.AioRpcError:
                await asyncio.sleep(0.1)
        bare = await measure("bare grpc.aio echo", lambda: echo(raw))
        floor = await measure("relay, no Baton logic (floor)",
                              lambda: relay.Dispatch(request, timeout=5))
        dispatch = await measure("Dispatch demo.echo",
                                 lambda: orch.Dispatch(request, metadata=metadata))
    return [bare, floor, dispatch]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        platform = BenchPlatform(Path(tmp), auth=True)
        echo_addr, relay_addr = (f"127.0.0.1:{free_port()}" for _ in range(2))
        echo = server("echo_server.py", echo_addr)
        relay = None
        try:
            echo.stdout.readline()
            platform.start()
            relay = server("relay_server.py", relay_addr, platform.addrs["worker"],
                           platform.token("service"))
            relay.stdout.readline()
            time.sleep(0.5)
            bare, floor, dispatch = asyncio.run(run(platform, echo_addr, relay_addr))
        finally:
            for child in (echo, relay):
                if child is not None:
                    child.terminate()
            platform.stop()
    print("\n## Dispatch (64 concurrent callers for throughput)\n")
    # The echo and relay servers inherit this process's environment, so every
    # row runs on the same gRPC I/O path (baton_core._grpc_env).
    print(f"GRPC_EXPERIMENTS={os.environ.get('GRPC_EXPERIMENTS', '')!r} for every process\n")
    print("| call | p50 ms | p99 ms | calls/s |\n| --- | --- | --- | --- |")
    for figures in (bare, floor, dispatch):
        print(figures.row())
    print(f"\nDispatch p50 = {dispatch.p50_ms / bare.p50_ms:.2f}x bare echo (target <= 2.5x); "
          f"throughput = {100 * dispatch.per_second / bare.per_second:.0f}% of bare "
          "(target >= 40%)")
    print(f"Relay (floor) p50 = {floor.p50_ms / bare.p50_ms:.2f}x bare echo; "
          f"throughput = {100 * floor.per_second / bare.per_second:.0f}% of bare")


def server(script: str, *args: str) -> subprocess.Popen:
    """One of this folder's bare servers, which prints a line once it listens."""
    return subprocess.Popen([sys.executable, str(Path(__file__).parent / script), *args],
                            stdout=subprocess.PIPE)


if __name__ == "__main__":
    main()
