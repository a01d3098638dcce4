"""Child service processes: start, wait until healthy, stop, kill.

Used by `baton up` and by the tests, so both run services the same way.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from baton_core import service_stop_budget
from baton_core._children import tied_args


def wait_healthy(address: str, timeout: float = 20.0, service: str = "",
                 proc: subprocess.Popen | None = None) -> None:
    """Blocks until grpc.health.v1 at `address` reports SERVING.

    Each probe goes over a new channel: the service is not listening yet when
    the first ones go out, and a channel whose connection was refused waits
    out gRPC's reconnect backoff (on the iomgr path Baton uses, up to ~10 s
    for a service that was listening after ~1.5 s) before it tries again.
    """
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process for {address} exited with {proc.returncode}")
        with grpc.insecure_channel(address) as channel:
            try:
                reply = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service=service), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError as exc:
                last = exc
        time.sleep(0.05)
    raise TimeoutError(f"{address} not healthy after {timeout}s: {last}")


class ChildProcess:
    """One child process with its own environment and log file."""

    def __init__(self, name: str, args: Sequence[str], env: Mapping[str, str],
                 log_path: Path, health_address: str | None = None) -> None:
        self.name = name
        self.args = list(args)
        self.env = dict(env)
        self.log_path = Path(log_path)
        self.health_address = health_address
        self.proc: subprocess.Popen | None = None
        self.restarts = 0
        # Seconds stop() waits after SIGTERM before a SIGKILL.
        self.stop_timeout = 10.0
        # Set by `baton up`: the child dies with it, and holds its data-dir lock.
        self.tied = False
        self.keep_fds: tuple[int, ...] = ()

    @classmethod
    def service(cls, name: str, kind: str, env: Mapping[str, str], log_path: Path,
                health_address: str | None) -> ChildProcess:
        """A `baton serve KIND` child run with this interpreter. stop() waits past
        the service's own stop budget, so that a stop that hangs is ended by the
        service's watchdog, saying where it waited, rather than by a SIGKILL."""
        child = cls(name, [sys.executable, "-m", "baton_cli", "serve", kind], env, log_path,
                    health_address)
        child.stop_timeout = service_stop_budget(kind, {**os.environ, **env}) + 2.0
        return child

    def start(self, wait: bool = True, timeout: float = 30.0) -> None:
        """Starts the process; with `wait`, blocks until it is healthy. A process that
        does not become healthy in time is stopped before the error is raised, so
        that a failed start leaves nothing running."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        try:
            self.proc = subprocess.Popen(
                tied_args(self.args) if self.tied else self.args,
                env={**os.environ, **self.env}, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True, pass_fds=self.keep_fds)
        finally:
            log.close()
        if wait and self.health_address:
            try:
                wait_healthy(self.health_address, timeout, proc=self.proc)
            except BaseException:
                self.stop(timeout=5.0)
                raise

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def stop(self, timeout: float | None = None) -> int | None:
        """SIGTERM, then SIGKILL after `timeout` (default: `stop_timeout`); safe to
        call twice."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(self.stop_timeout if timeout is None else timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return proc.returncode

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
