"""Child processes: waiting for a service to become healthy."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from baton_cli._process import ChildProcess, wait_healthy
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


def test_serve_on_a_port_in_use_says_so_in_one_line(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("BATON_")},
               "BATON_AUTH": "off", "BATON_DATA_DIR": str(tmp_path),
               "BATON_LISTEN": f"127.0.0.1:{port}"}
        done = subprocess.run([sys.executable, "-m", "baton_cli", "serve", "registry"],
                              env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert last == f"baton serve registry: cannot listen on 127.0.0.1:{port}: " \
                   "Address already in use"
    assert "Traceback" not in done.stderr


def test_serve_with_a_bad_stream_limit_says_so_in_one_line(tmp_path):
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("BATON_")},
           "BATON_AUTH": "off", "BATON_DATA_DIR": str(tmp_path),
           "BATON_LISTEN": f"127.0.0.1:{free_port()}",
           "BATON_MAX_STREAMS_PER_CONNECTION": "lots"}
    done = subprocess.run([sys.executable, "-m", "baton_cli", "serve", "registry"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("baton serve registry: BATON_MAX_STREAMS_PER_CONNECTION")
    assert "Traceback" not in done.stderr


def test_a_child_that_never_becomes_healthy_is_stopped_when_its_start_fails(tmp_path):
    # `baton up` and the test fixtures stop the children that started; one whose
    # start failed was left running (here: it never listens).
    address = f"127.0.0.1:{free_port()}"
    child = ChildProcess("stuck", [sys.executable, "-c", "import time; time.sleep(60)"], {},
                         tmp_path / "stuck.log", address)
    with pytest.raises(TimeoutError, match=f"{address} not healthy after 1.0s"):
        child.start(timeout=1.0)
    assert child.proc is not None and child.proc.poll() is not None
    assert not child.alive()


# Ignores SIGTERM, says so, and exits with 3 a second later: a slow stop.
SLOW_STOP = """
import signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: (time.sleep(1.0), sys.exit(3)))
print("ready", flush=True)
time.sleep(60)
"""


def test_stop_waits_the_childs_stop_timeout_before_a_sigkill(tmp_path):
    returncodes = []
    for stop_timeout in (5.0, 0.3):
        child = ChildProcess("slow", [sys.executable, "-c", SLOW_STOP], {},
                             tmp_path / f"slow-{stop_timeout}.log")
        child.stop_timeout = stop_timeout
        child.start(wait=False)
        while "ready" not in child.tail():
            time.sleep(0.05)
        returncodes.append(child.stop())
    assert returncodes == [3, -9]  # it ended on its own; it was killed


@pytest.mark.parametrize(("kind", "env", "budget"), [
    ("registry", {}, 0.5 + 5 + 10),
    ("orchestrator", {}, 0.5 + 5 + 3 + 10),
    ("orchestrator", {"BATON_SHUTDOWN_GRACE_SECONDS": "8",
                      "BATON_WORKFLOW_DRAIN_SECONDS": "12"}, 0.5 + 8 + 12 + 10),
    ("sessions", {"BATON_WORKFLOW_DRAIN_SECONDS": "12"}, 0.5 + 5 + 10),
    ("sessions", {"BATON_SHUTDOWN_GRACE_SECONDS": "soon"}, 0.5 + 5 + 10),  # refused at start
])
def test_baton_up_outwaits_a_services_own_stop_watchdog(kind, env, budget, monkeypatch,
                                                         tmp_path):
    """A service's stop that hangs is ended by its watchdog (health drain, grace,
    workflow drain and 10 s), which says where it hung; a SIGKILL before that
    would say nothing."""
    monkeypatch.delenv("BATON_SHUTDOWN_GRACE_SECONDS", raising=False)
    monkeypatch.delenv("BATON_WORKFLOW_DRAIN_SECONDS", raising=False)
    child = ChildProcess.service(kind, kind, env, tmp_path / "log", None)
    assert budget < child.stop_timeout <= budget + 5
