"""`baton up`: the whole platform on its embedded default, supervised."""

from __future__ import annotations

import fcntl
import functools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from baton_core import RedisServer, bind_problem, redact_url, redis_problem
from baton_core import constants as c

from ._gateway import Gateway, GatewayError, GatewaySettings, build_descriptor
from ._process import ChildProcess
from ._up_auth import auth_hint, prepare_auth

EMBEDDED_REPLICA = "embedded"
LOCK_FILE = "baton-up.lock"


@dataclass(frozen=True)
class PlatformConfig:
    data_dir: Path
    host: str = "127.0.0.1"
    registry_port: int = c.REGISTRY_PORT
    orchestrator_port: int = c.ORCHESTRATOR_PORT
    sessions_port: int = c.SESSIONS_PORT
    worker_port: int = c.WORKER_PORT
    redis_url: str = ""
    with_worker: bool = True
    # None: no gateway (`baton up --no-gateway`).
    gateway_port: int | None = c.GATEWAY_PORT
    # BATON_METRICS_PORT under `baton up`: the first of three ports, one per service
    # (registry, sessions, orchestrator, in that order); 0: no metrics endpoints.
    metrics_port: int = 0

    def metrics_ports(self) -> dict[str, int]:
        if not self.metrics_port:
            return {}
        return {kind: self.metrics_port + i
                for i, kind in enumerate(("registry", "sessions", "orchestrator"))}

    def addr(self, port: int) -> str:
        return f"{self.host}:{port}"

    def ports(self) -> list[tuple[str, str, int]]:
        """(what, its `baton up` option, port) for every port the platform listens on."""
        ports = [("registry", "--registry-port", self.registry_port),
                 ("sessions", "--sessions-port", self.sessions_port),
                 ("orchestrator", "--orchestrator-port", self.orchestrator_port)]
        if self.with_worker:
            ports.append(("example worker", "--worker-port", self.worker_port))
        if self.gateway_port is not None:
            ports.append(("gateway", "--gateway-port", self.gateway_port))
        ports += [(f"{kind}'s metrics", c.ENV_METRICS_PORT, port)
                  for kind, port in self.metrics_ports().items()]
        return ports


def _start_child(child: ChildProcess) -> int:
    child.start(wait=True)
    return _pid(child.proc)


def _start_redis(redis: RedisServer, keep_fds: tuple[int, ...] = ()) -> int:
    redis.start(tied=True, keep_fds=keep_fds)
    return _pid(redis.proc)


def _pid(proc: subprocess.Popen | None) -> int:
    if proc is None:  # start() made one or raised
        raise RuntimeError("the process did not start")
    return proc.pid


class _Interrupted(Exception):
    """A signal came while the platform was starting: start nothing more."""


class Platform:
    """Redis, the three services and the example worker as supervised children."""

    def __init__(self, config: PlatformConfig, out=sys.stdout) -> None:
        self.config = config
        self.out = out
        self.redis: RedisServer | None = None
        self.children: list[ChildProcess] = []
        self._stopping = False
        self._redis_restarts = 0
        self._lock: int | None = None

    def say(self, message: str) -> None:
        try:
            print(f"[baton] {message}", file=self.out, flush=True)
        except OSError:  # e.g. `baton up | head` after head exits: go on, silently
            self.out = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process

    def check_ports(self) -> None:
        """Refuses to start when a port is taken (another `baton up`, say): its
        children would fail to listen, while health checks reached the other."""
        busy = [(what, option, port, why) for what, option, port in self.config.ports()
                if (why := bind_problem(self.config.host, port))]
        for what, _, port, why in busy:
            self.say(f"cannot use port {port} on {self.config.host} for the {what}: {why}")
        if busy:
            self.say("is another `baton up` running? Stop it, or choose other ports ("
                     + ", ".join(option for _, option, _, _ in busy) + ")")
            raise SystemExit(1)

    def lock_data_dir(self) -> None:
        """Refuses to start on a data directory another `baton up` uses: two would run
        two redis-servers on one append-only file and two orchestrators named
        `embedded` on one database. The lock goes with the process."""
        path = self.config.data_dir / LOCK_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            self.say(f"the data directory {self.config.data_dir} is in use by another "
                     f"`baton up` (pid {holder}), or by processes it started that are still "
                     "stopping: stop it, or choose another --data-dir")
            raise SystemExit(1) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock = fd

    def start(self) -> None:
        cfg = self.config
        self.lock_data_dir()
        self.check_ports()
        # Before anything starts: an auth setting that cannot be used stops `baton up`
        # here (SettingError, one line and exit 2), with no Redis to stop again.
        worker_auth = prepare_auth(cfg.data_dir, self.say)
        logs = cfg.data_dir / "logs"
        redis_url = cfg.redis_url
        if not redis_url:
            self.redis = RedisServer(cfg.data_dir / "redis", persist=True)
            _start_redis(self.redis, self._held())
            redis_url = self.redis.url
            self.say(f"redis-server started on {redis_url} (pid {_pid(self.redis.proc)}, "
                     f"data in {cfg.data_dir / 'redis'})")
        else:
            self.say(f"using Redis at {redact_url(redis_url)}")
            problem = redis_problem(redis_url)
            if problem:
                self.say(f"WARNING: that Redis does not answer ({problem}); until it does, "
                         "sessions are served from SQL, rate limits and circuit breakers go "
                         "unchecked, and calls with idempotency keys are refused. Is REDIS_URL "
                         "right?")
        common = {
            c.ENV_DATA_DIR: str(cfg.data_dir),
            c.ENV_REDIS_URL: redis_url,
            c.ENV_REGISTRY_ADDR: cfg.addr(cfg.registry_port),
            c.ENV_SESSIONS_ADDR: cfg.addr(cfg.sessions_port),
            c.ENV_ORCHESTRATOR_ADDR: cfg.addr(cfg.orchestrator_port),
        }
        # What is called starts before its callers, and stops after them (stop()
        # goes in reverse): the worker is registered before the orchestrator
        # resumes runs that call it, and the orchestrator gives its runs back
        # before the worker goes, instead of seeing their steps fail.
        self._launch(self._service("registry", cfg.registry_port, common))
        self._launch(self._service("sessions", cfg.sessions_port, common))
        if cfg.with_worker:
            env = {**common, **worker_auth, c.ENV_WORKER_LISTEN: cfg.addr(cfg.worker_port)}
            worker = ChildProcess("example-worker",
                                  [sys.executable, "-m", "baton_examples.casefile_worker"],
                                  env, logs / "example-worker.log", cfg.addr(cfg.worker_port))
            self._launch(worker)
        # One name across restarts: an orchestrator restarted after a crash resumes
        # the runs it owned at once, not once their leases lapse.
        self._launch(self._service("orchestrator", cfg.orchestrator_port, {
            **common, c.ENV_REPLICA_ID: os.environ.get(c.ENV_REPLICA_ID) or EMBEDDED_REPLICA}))
        if cfg.gateway_port is not None:
            self._launch(self._gateway(logs, cfg.gateway_port))
        if self._stopping:
            raise _Interrupted
        self.say("platform is up:")
        self.say(f"  registry      {cfg.addr(cfg.registry_port)}  ({c.REGISTRY_SERVICE})")
        self.say(f"  orchestrator  {cfg.addr(cfg.orchestrator_port)}  ({c.ORCHESTRATOR_SERVICE}, "
                 "Workflows, HookManager, PolicyEngine, AuditLog, CircuitBreakers)")
        self.say(f"  sessions      {cfg.addr(cfg.sessions_port)}  ({c.SESSIONS_SERVICE})")
        if cfg.with_worker:
            self.say(f"  worker        {cfg.addr(cfg.worker_port)}  (examples: casefile.*, demo.*)")
        if cfg.gateway_port is not None:
            self.say(f"  gateway       http://{cfg.addr(cfg.gateway_port)}  (HTTP/JSON and gRPC "
                     "through Envoy; see README \"Use it over HTTP\")")
        self.say(f"  logs          {logs}")
        if cfg.metrics_port:
            self.say("  metrics       " + ", ".join(
                f"{kind} http://{cfg.addr(port)}/metrics"
                for kind, port in cfg.metrics_ports().items()))
        moved = [(env, cfg.addr(port)) for env, port, default in (
            (c.ENV_REGISTRY_ADDR, cfg.registry_port, c.REGISTRY_PORT),
            (c.ENV_ORCHESTRATOR_ADDR, cfg.orchestrator_port, c.ORCHESTRATOR_PORT),
            (c.ENV_SESSIONS_ADDR, cfg.sessions_port, c.SESSIONS_PORT))
            if port != default or cfg.host != "127.0.0.1"]
        if moved:
            self.say("for the CLI: export " + " ".join(f"{env}={addr}" for env, addr in moved))
        for line in auth_hint(cfg.data_dir, cfg.addr(cfg.orchestrator_port)):
            self.say(line)

    def _service(self, kind: str, port: int, env: dict[str, str]) -> ChildProcess:
        cfg = self.config
        env = {**env, c.ENV_LISTEN: cfg.addr(port),
               c.ENV_DATABASE_URL: os.environ.get(f"BATON_{kind.upper()}_DATABASE_URL", ""),
               c.ENV_METRICS_PORT: str(cfg.metrics_ports().get(kind, ""))}
        return ChildProcess.service(kind, kind, env, cfg.data_dir / "logs" / f"{kind}.log",
                                    cfg.addr(port))

    def _gateway(self, logs: Path, port: int) -> Gateway:
        """Envoy routing to the ports this platform actually uses."""
        cfg = self.config
        workdir = cfg.data_dir / "gateway"
        try:
            descriptor = build_descriptor(workdir / "descriptor.binpb")
            settings = GatewaySettings(
                listen=cfg.addr(port),
                upstreams={"registry": cfg.addr(cfg.registry_port),
                           "orchestrator": cfg.addr(cfg.orchestrator_port),
                           "sessions": cfg.addr(cfg.sessions_port)},
                descriptor=str(descriptor))
            return Gateway(settings, workdir, logs / "gateway.log")
        except GatewayError as exc:
            self.say(f"gateway cannot start: {exc} (--no-gateway runs without it)")
            self.stop()
            raise SystemExit(1) from exc

    def _held(self) -> tuple[int, ...]:
        """The data-dir lock, which every child holds too: killed outright, `baton up`
        leaves its children to stop (they get SIGTERM), and the lock is free
        only once the last of them is gone."""
        return (self._lock,) if self._lock is not None else ()

    def _launch(self, child: ChildProcess) -> None:
        if self._stopping:
            raise _Interrupted
        child.tied, child.keep_fds = True, self._held()
        try:
            child.start(wait=True)
        except (RuntimeError, TimeoutError) as exc:
            self.say(f"{child.name} failed to start: {exc}\n{child.tail()}")
            self.stop()
            raise SystemExit(1) from exc
        self.children.append(child)
        self.say(f"{child.name} started (pid {child.pid})")

    def supervise(self, poll: float = 0.5) -> None:
        """Restarts children that die, until stop() or a signal."""
        while not self._stopping:
            self._tend_redis()
            for child in self.children:
                if self._stopping or child.alive():
                    continue
                child.restarts += 1
                self._restart(child.name, child.proc.returncode if child.proc else None,
                              child.restarts, functools.partial(_start_child, child))
            time.sleep(poll)

    def _restart(self, name: str, code: int | None, restarts: int,
                 start: Callable[[], int]) -> None:
        """Starts a process that exited again (`start` returns its new pid), after a
        pause that grows with its restarts, saying what happens."""
        self.say(f"{name} exited with code {code}; restarting (restart #{restarts})")
        time.sleep(min(0.2 * restarts, 5.0))
        try:
            self.say(f"{name} is back (pid {start()})")
        except (RuntimeError, TimeoutError) as exc:
            self.say(f"{name} did not come back: {exc}")

    def _tend_redis(self) -> None:
        """Restarts the platform's own redis-server on its port if it died (its
        append-only file brings back what it held)."""
        redis = self.redis
        if self._stopping or redis is None or redis.proc is None or redis.proc.poll() is None:
            return
        self._redis_restarts += 1
        self._restart("redis-server", redis.proc.returncode, self._redis_restarts,
                      functools.partial(_start_redis, redis, self._held()))

    def stop(self) -> None:
        """Stops the children in reverse order, then Redis; safe to call twice."""
        self._stopping = True
        for child in reversed(self.children):
            child.stop()
        self.children = []
        if self.redis is not None:
            self.redis.stop()
            self.redis = None
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None


def run_platform(config: PlatformConfig) -> None:
    platform = Platform(config)

    def _on_signal(signum, _frame):
        platform._stopping = True

    # SIGHUP too: the children run in sessions of their own, so a closed terminal
    # would otherwise leave them running, holding the ports.
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    try:
        platform.start()
        platform.supervise()
    except _Interrupted:
        pass
    finally:
        started = bool(platform.children or platform.redis)
        if started:
            platform.say("stopping...")
        platform.stop()
        if started:
            platform.say("stopped")
