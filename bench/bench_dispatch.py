"""Dispatch of a trivial method vs a bare grpc.aio echo with the same payload.

A third row, a relay with none of Baton's logic over the same worker channel
(`relay_server.py`), shows the floor of Dispatch's two hops on the machine.

The three rows are measured one after the other, in rounds (`--rounds`,
default 3), so that a drift of the machine reaches all of them alike. The
table shows each row's median over the rounds; the ratios are computed per
round and shown as their median and range.

    python bench/bench_dispatch.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc

from baton.orchestrator.v1 import orchestrator_pb2, orchestrator_pb2_grpc
from baton_core import dict_to_struct, free_port

sys.path.insert(0, str(Path(__file__).parent))
from _harness import BenchPlatform, Figures, measure  # noqa: E402

PAYLOAD = {"value": "hello"}


async def run(platform: BenchPlatform, echo_addr: str, relay_addr: str,
              rounds: int) -> list[list[Figures]]:
    """[echo, relay, Dispatch] figures of each round."""
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
        return [[await measure("bare grpc.aio echo", lambda: echo(raw)),
                 await measure("relay, no Baton logic (floor)",
                               lambda: relay.Dispatch(request, timeout=5)),
                 await measure("Dispatch demo.echo",
                               lambda: orch.Dispatch(request, metadata=metadata))]
                for _ in range(rounds)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    rounds = max(1, parser.parse_args().rounds)
    with tempfile.TemporaryDirectory() as tmp:
        platform = BenchPlatform(Path(tmp), auth=True)
        echo_addr, relay_addr = (f"127.0.0.1:{free_port()}" for _ in range(2))
        echo = server("echo_server.py", echo_addr)
        relay = None
        try:
            assert echo.stdout is not None  # stdout=PIPE
            echo.stdout.readline()
            platform.start()
            relay = server("relay_server.py", relay_addr, platform.addrs["worker"],
                           platform.token("service"))
            assert relay.stdout is not None  # stdout=PIPE
            relay.stdout.readline()
            time.sleep(0.5)
            results = asyncio.run(run(platform, echo_addr, relay_addr, rounds))
        finally:
            for child in (echo, relay):
                if child is not None:
                    child.terminate()
            platform.stop()
    print(f"\n## Dispatch (64 concurrent callers for throughput; medians of {rounds} rounds)\n")
    # The echo and relay servers inherit this process's environment, so every
    # row runs on the same gRPC I/O path (baton_core._grpc_env).
    print(f"GRPC_EXPERIMENTS={os.environ.get('GRPC_EXPERIMENTS', '')!r} for every process\n")
    print("| call | p50 ms | p99 ms | calls/s |\n| --- | --- | --- | --- |")
    for row in zip(*results, strict=True):
        print(Figures(row[0].name, *(statistics.median(getattr(f, field) for f in row)
                                     for field in ("p50_ms", "p99_ms", "per_second"))).row())
    print()
    for i, name, note in ((2, "Dispatch", " (targets: p50 <= 2.5x, throughput >= 40%)"),
                          (1, "Relay (floor)", "")):
        p50 = spread([r[i].p50_ms / r[0].p50_ms for r in results], "{:.2f}x")
        share = spread([100 * r[i].per_second / r[0].per_second for r in results], "{:.0f}%")
        print(f"{name}: p50 = {p50} the bare echo; throughput = {share} of it{note}")


def spread(values: list[float], fmt: str) -> str:
    """The median, and the range when there are several rounds."""
    text = fmt.format(statistics.median(values))
    if len(values) > 1:
        text += f" (rounds: {fmt.format(min(values))} to {fmt.format(max(values))})"
    return text


def server(script: str, *args: str) -> subprocess.Popen[bytes]:
    """One of this folder's bare servers, which prints a line once it listens."""
    return subprocess.Popen([sys.executable, str(Path(__file__).parent / script), *args],
                            stdout=subprocess.PIPE)


if __name__ == "__main__":
    main()
