"""`baton up`: the embedded platform starts, serves, heals and stops cleanly."""

from __future__ import annotations

import fcntl
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import redis as redis_lib

import baton_core
from baton_core import free_port

GRPCURL = shutil.which("grpcurl") or str(Path(sys.executable).with_name("grpcurl"))


class Output:
    """Collects a process's stdout lines on a thread so tests can wait for one."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, args=(proc,), daemon=True).start()

    def _pump(self, proc):
        for line in proc.stdout:
            self._queue.put(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout: float = 60.0) -> re.Match:
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        for line in self.lines:
            if (match := regex.search(line)):
                return match
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            self.lines.append(line)
            if (match := regex.search(line)):
                return match
        raise AssertionError(f"no line matching {pattern!r} in:\n" + "\n".join(self.lines))


def grpcurl(*args: str) -> str:
    done = subprocess.run([GRPCURL, "-plaintext", *args], capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout


def baton_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "baton_cli", *args], capture_output=True,
                          text=True, env=env, timeout=60)


# `baton up` runs with auth on, as it does by default.
UP_ENV = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "BATON_AUTH")}


def up_process(data_dir: Path, ports: dict[str, int], *flags: str,
               env: dict[str, str] | None = None) -> subprocess.Popen:
    """`baton up` on these ports as a process of its own session."""
    args = [sys.executable, "-m", "baton_cli", "up", "--data-dir", str(data_dir), *flags]
    for name, port in ports.items():
        args += [f"--{name}-port", str(port)]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env or UP_ENV, start_new_session=True)


def stop_up(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def free_run_of_ports(count: int) -> int:
    """The first of `count` consecutive ports that are free now."""
    for _ in range(100):
        first = free_port()
        if first + count <= 65535 and all(
                baton_core.bind_problem("127.0.0.1", first + i) is None for i in range(count)):
            return first
    raise AssertionError(f"no {count} consecutive free ports")


@pytest.fixture
def baton_up(tmp_path):
    ports = {name: free_port()
             for name in ("registry", "orchestrator", "sessions", "worker", "gateway")}
    ports["metrics"] = free_run_of_ports(3)
    proc = up_process(tmp_path / "data", {k: v for k, v in ports.items() if k != "metrics"},
                      env={**UP_ENV, "BATON_METRICS_PORT": str(ports["metrics"])})
    out = Output(proc)
    yield proc, out, ports
    stop_up(proc)



def test_up_serves_every_port_restarts_a_dead_child_and_stops_cleanly(baton_up, tmp_path):
    proc, out, ports = baton_up
    out.wait_for(r"platform is up", timeout=90)
    assert (tmp_path / "data" / "registry.db").exists()
    assert (tmp_path / "data" / "redis").is_dir()

    listed = grpcurl(f"127.0.0.1:{ports['orchestrator']}", "list")
    assert "baton.orchestrator.v1.Orchestrator" in listed
    assert "baton.orchestrator.v1.HookManager" in listed
    assert "baton.registry.v1.MethodRegistry" in grpcurl(f"127.0.0.1:{ports['registry']}", "list")
    assert "baton.sessions.v1.SessionOrchestrator" in grpcurl(
        f"127.0.0.1:{ports['sessions']}", "list")
    assert "baton.provider.v1.MethodProvider" in grpcurl(f"127.0.0.1:{ports['worker']}", "list")

    data = str(tmp_path / "data")
    out.wait_for(re.escape(
        f"for the CLI: export BATON_REGISTRY_ADDR=127.0.0.1:{ports['registry']} "
        f"BATON_ORCHESTRATOR_ADDR=127.0.0.1:{ports['orchestrator']} "
        f"BATON_SESSIONS_ADDR=127.0.0.1:{ports['sessions']}"))
    out.wait_for(r"get a token: export BATON_TOKEN=\$\(baton token --role admin --data-dir "
                 + re.escape(data) + r"\)")
    env = {k: v for k, v in os.environ.items() if k != "BATON_AUTH"}
    issued = baton_cli(env, "token", "--role", "admin", "--data-dir", data)
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip()
    dispatch = ["-d", '{"operation": "casefile.create", "params": {"title": "from grpcurl"}}',
                f"127.0.0.1:{ports['orchestrator']}",
                "baton.orchestrator.v1.Orchestrator/Dispatch"]
    refused = subprocess.run([GRPCURL, "-plaintext", *dispatch], capture_output=True,
                             text=True, timeout=30)
    assert refused.returncode != 0 and "Unauthenticated" in refused.stderr
    reply = json.loads(grpcurl("-H", f"authorization: Bearer {token}", *dispatch))
    assert reply["result"]["casefile_id"]
    # The worker holds the platform's key too: a user cannot go around the orchestrator.
    user = baton_cli(env, "token", "--role", "user", "--data-dir", data).stdout.strip()
    bypass = subprocess.run(
        [GRPCURL, "-plaintext", "-H", f"authorization: Bearer {user}", "-d",
         '{"method": "casefile.create", "params": {"title": "sneaky"}}',
         f"127.0.0.1:{ports['worker']}", "baton.provider.v1.MethodProvider/Invoke"],
        capture_output=True, text=True, timeout=30)
    assert bypass.returncode != 0 and "PermissionDenied" in bypass.stderr

    env = {**env, "BATON_TOKEN": token,
           "BATON_ORCHESTRATOR_ADDR": f"127.0.0.1:{ports['orchestrator']}",
           "BATON_REGISTRY_ADDR": f"127.0.0.1:{ports['registry']}"}
    ok = baton_cli(env, "dispatch", "casefile.create", "--params", '{"title": "from the CLI"}')
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["result"]["casefile_id"]
    bad = baton_cli(env, "dispatch", "casefile.create", "--params", '{"title": 7}')
    assert bad.returncode == 1
    assert "INVALID_ARGUMENT" in bad.stderr and "params.title" in bad.stderr
    assert "Traceback" not in bad.stderr
    listed = baton_cli(env, "methods", "list")
    assert "demo.sleep" in listed.stdout
    # BATON_METRICS_PORT: one /metrics per service, on that port and the next two.
    first = ports["metrics"]
    out.wait_for(re.escape(
        f"metrics       registry http://127.0.0.1:{first}/metrics, sessions "
        f"http://127.0.0.1:{first + 1}/metrics, orchestrator http://127.0.0.1:{first + 2}/metrics"))
    scraped = [urllib.request.urlopen(f"http://127.0.0.1:{first + i}/metrics", timeout=10)
               .read().decode() for i in range(3)]
    assert all("process_resident_memory_bytes" in text for text in scraped)
    assert 'baton_dispatch_total{operation="casefile.create",outcome="OK"}' in scraped[2]

    pid = int(out.wait_for(r"registry started \(pid (\d+)\)").group(1))
    os.kill(pid, signal.SIGKILL)
    out.wait_for(r"registry exited with code -9; restarting", timeout=30)
    out.wait_for(r"registry is back", timeout=60)
    assert "MethodRegistry" in grpcurl(f"127.0.0.1:{ports['registry']}", "list")

    # Redis is supervised too, on the same port, with what it held.
    env["BATON_SESSIONS_ADDR"] = f"127.0.0.1:{ports['sessions']}"
    created = json.loads(baton_cli(env, "sessions", "create", "--user", "ann").stdout)
    os.kill(int(out.wait_for(r"redis-server started on \S+ \(pid (\d+)").group(1)),
            signal.SIGKILL)
    out.wait_for(r"redis-server exited with code -9; restarting", timeout=30)
    out.wait_for(r"redis-server is back", timeout=30)
    redis = redis_lib.Redis.from_url(out.wait_for(r"redis-server started on (\S+)").group(1))
    assert any(created["session_id"] in key.decode() for key in redis.keys("*"))
    again = baton_cli(env, "sessions", "get", created["session_id"])
    assert again.returncode == 0 and json.loads(again.stdout)["user_id"] == "ann"

    # Its data directory is taken while it runs (a second `baton up` on it is refused).
    second = baton_cli(UP_ENV, "up", "--data-dir", str(tmp_path / "data"), "--no-gateway",
                       "--no-worker", "--registry-port", str(free_port()), "--sessions-port",
                       str(free_port()), "--orchestrator-port", str(free_port()))
    assert second.returncode == 1
    assert (f"the data directory {tmp_path / 'data'} is in use by another `baton up` "
            f"(pid {proc.pid})") in second.stdout
    assert "[baton] stopping" not in second.stdout  # it started nothing

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0
    out.wait_for(r"\[baton\] stopped")
    with open(tmp_path / "data" / "baton-up.lock") as lock:  # and free once it stopped
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_up_refuses_ports_in_use_before_starting_anything(tmp_path):
    # As when another `baton up` runs: its health checks would reach the other one.
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        args = ["up", "--data-dir", str(tmp_path / "data"), "--no-gateway", "--no-worker",
                "--registry-port", str(free_port()), "--sessions-port", str(port),
                "--orchestrator-port", str(free_port())]
        env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
        done = baton_cli(env, *args)
    assert done.returncode == 1
    assert (f"cannot use port {port} on 127.0.0.1 for the sessions: Address already in use"
            in done.stdout)
    assert "--sessions-port" in done.stdout and "--registry-port" not in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
    assert not (tmp_path / "data" / "redis").exists()  # nothing was started


def test_up_with_an_unusable_auth_setting_says_so_before_starting_anything(tmp_path):
    env = {**UP_ENV, "BATON_API_KEYS_FILE": str(tmp_path / "missing.yaml")}
    done = baton_cli(env, "up", "--data-dir", str(tmp_path / "data"), "--no-gateway",
                     "--no-worker", "--registry-port", str(free_port()), "--sessions-port",
                     str(free_port()), "--orchestrator-port", str(free_port()))
    assert done.returncode == 2
    assert done.stderr == (f"baton: BATON_API_KEYS_FILE={tmp_path / 'missing.yaml'}: "
                           "cannot be read: No such file or directory\n")
    assert "redis-server started" not in done.stdout and "started" not in done.stdout
    assert not (tmp_path / "data" / "redis").exists()  # nothing was started


def test_up_stops_its_children_when_its_terminal_hangs_up(tmp_path):
    ports = {name: free_port() for name in ("registry", "orchestrator", "sessions")}
    proc = up_process(tmp_path / "data", ports, "--no-gateway", "--no-worker")
    try:
        out = Output(proc)
        out.wait_for(r"platform is up", timeout=90)
        pids = [int(out.wait_for(rf"{kind} started \(pid (\d+)\)").group(1)) for kind in ports]
        proc.send_signal(signal.SIGHUP)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    for pid in pids:  # the children run in sessions of their own: stopped, not orphaned
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    for port in ports.values():
        assert baton_core.bind_problem("127.0.0.1", port) is None


def _running(pid: int) -> bool:
    """Whether `pid` runs (a zombie nobody reaped yet has stopped)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def test_children_stop_when_baton_up_is_killed_and_free_the_data_dir(tmp_path):
    ports = {name: free_port() for name in ("registry", "orchestrator", "sessions")}
    proc = up_process(tmp_path / "data", ports, "--no-gateway", "--no-worker")
    pids: list[int] = []
    try:
        out = Output(proc)
        out.wait_for(r"platform is up", timeout=90)
        pids += [int(out.wait_for(rf"{kind} started \(pid (\d+)\)").group(1)) for kind in ports]
        pids.append(int(out.wait_for(r"redis-server started on \S+ \(pid (\d+)").group(1)))
        proc.kill()  # no chance to stop them itself
        proc.wait(10)
        deadline = time.monotonic() + 30
        while any(_running(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert [pid for pid in pids if _running(pid)] == []
        # Free once they are gone, and whatever they forked (a redis-server rewriting
        # its append-only file in a child, say) a moment later.
        with open(tmp_path / "data" / "baton-up.lock") as lock:
            while True:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
    finally:
        for pid in pids:
            if _running(pid):
                os.kill(pid, signal.SIGKILL)


def test_ctrl_c_while_starting_starts_nothing_more(tmp_path):
    ports = {name: free_port() for name in ("registry", "orchestrator", "sessions")}
    proc = up_process(tmp_path / "data", ports, "--no-gateway", "--no-worker")
    try:
        out = Output(proc)
        pid = int(out.wait_for(r"registry started \(pid (\d+)\)", timeout=90).group(1))
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
        out.wait_for(r"\[baton\] stopped")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert not any("platform is up" in line or "orchestrator started" in line
                   for line in out.lines)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_run_in_flight_when_the_platform_stops_finishes_once_it_is_up_again(tmp_path):
    ports = {name: free_port() for name in ("registry", "orchestrator", "sessions", "worker")}
    workflow = tmp_path / "slow.yaml"
    workflow.write_text("name: slow\nsteps:\n"
                        "  - {step_id: nap, method: demo.sleep, params: {seconds: 3}}\n"
                        "  - {step_id: after, method: demo.echo, params: {value: done}}\n")

    def up() -> subprocess.Popen:
        proc = up_process(tmp_path / "data", ports, "--no-gateway")
        Output(proc).wait_for(r"platform is up", timeout=90)
        return proc

    proc = up()
    try:
        token = baton_cli(UP_ENV, "token", "--role", "admin", "--data-dir",
                          str(tmp_path / "data")).stdout.strip()
        cli_env = {**UP_ENV, "BATON_TOKEN": token,
                   "BATON_ORCHESTRATOR_ADDR": f"127.0.0.1:{ports['orchestrator']}"}
        started = baton_cli(cli_env, "run", "--detach", str(workflow))
        assert started.returncode == 0, started.stderr
        run_id = started.stdout.strip()
        time.sleep(1.5)  # the nap is in flight
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        # Stopped before the worker, the orchestrator gave the run back untouched
        # (a worker stopped first failed the step); started after the worker, it
        # finds the worker registered when it resumes the run.
        proc = up()
        watched = baton_cli(cli_env, "runs", "watch", run_id)
        assert watched.returncode == 0, watched.stdout + watched.stderr
        assert "run SUCCEEDED" in watched.stdout
    finally:
        stop_up(proc)


def test_up_warns_when_the_redis_it_is_given_does_not_answer(tmp_path):
    ports = {name: free_port() for name in ("registry", "orchestrator", "sessions")}
    env = {**UP_ENV, "REDIS_URL": f"redis://:secret@127.0.0.1:{free_port()}/0"}
    proc = up_process(tmp_path / "data", ports, "--no-gateway", "--no-worker", env=env)
    try:
        out = Output(proc)
        out.wait_for(r"using Redis at redis://:\*\*\*@127\.0\.0\.1")
        out.wait_for(r"WARNING: that Redis does not answer \(.*refused.*\).*Is REDIS_URL right")
        proc.send_signal(signal.SIGINT)  # while it starts: nothing more is started
        assert proc.wait(60) == 0
    finally:
        stop_up(proc)
    assert any("using Redis at" in line for line in out.lines)
    assert not any(":secret@" in line for line in out.lines)  # the password is redacted
