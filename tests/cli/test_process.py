"""Child processes: waiting for a service to become healthy."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from baton_cli._process import wait_healthy
from baton_core import free_port

# A health server that starts listening after a pause, as a child that is still
# importing its modules does.
LATE_SERVER = """
import asyncio, sys, time
import grpc
from grpc_health.v1 import health, health_pb2_grpc

async def main():
    time.sleep(float(sys.argv[2]))
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    server.add_insecure_port(sys.argv[1])
    await server.start()
    print(time.time(), flush=True)
    await server.wait_for_termination()

asyncio.run(main())
"""


def test_a_service_that_starts_listening_late_is_noticed_soon_after():
    # Probing over one reused channel, a server listening after 1.5 s was noticed
    # after 10 s (gRPC's reconnect backoff), and `baton up` spent ~35 s starting.
    address = f"127.0.0.1:{free_port()}"
    child = subprocess.Popen([sys.executable, "-c", LATE_SERVER, address, "1.5"],
                             stdout=subprocess.PIPE, text=True)
    try:
        wait_healthy(address, timeout=6.0, proc=child)
        noticed = time.time()
        listening = float(child.stdout.readline())
    finally:
        child.kill()
        child.wait()
    assert noticed - listening < 3.0


def test_waiting_gives_up_with_the_last_error_when_nothing_answers():
    address = f"127.0.0.1:{free_port()}"
    with pytest.raises(TimeoutError, match=f"{address} not healthy after 0.5s"):
        wait_healthy(address, timeout=0.5)


def test_waiting_stops_when_the_process_exits():
    child = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    child.wait()
    with pytest.raises(RuntimeError, match="exited with 3"):
        wait_healthy(f"127.0.0.1:{free_port()}", timeout=5.0, proc=child)
