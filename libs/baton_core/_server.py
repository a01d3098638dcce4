"""One server bootstrap: aio server, health, reflection, interceptors, graceful stop."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import grpc
from google.protobuf import descriptor_pool
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from . import _constants as c
from . import _grpc_env
from ._env import SettingError, int_setting
from ._interceptors import ErrorInterceptor
from ._memory import pin_malloc_thresholds, release_free_memory, trim_when_idle
from ._stop_watchdog import STOP_MARGIN, stop_budget, watch_stop

log = logging.getLogger("baton.server")

MAX_MESSAGE_BYTES = 16 * 1024 * 1024
# Calls that reached the server before grpc.aio asked for them wait in gRPC's
# backlog. Past its default of 1,000 gRPC cancels a growing share of new calls
# (all of them at 3,000), so a burst of 2,000 StartRuns lost about one in ten.
# grpc.aio asks for calls as fast as its loop turns, so the backlog only fills
# for the moment a burst lands; each waiting call costs a few kB.
MAX_PENDING_CALLS = 10_000
SERVER_OPTIONS = (
    ("grpc.server.max_pending_requests", MAX_PENDING_CALLS),
    ("grpc.server.max_pending_requests_hard_limit", 2 * MAX_PENDING_CALLS),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    # A port in use is an error, not shared: with gRPC's default (SO_REUSEPORT)
    # a second `baton up` bound the same ports, and the kernel split the calls
    # between the two platforms.
    ("grpc.so_reuseport", 0),
)
# Calls one client connection may have open at once (HTTP/2
# MAX_CONCURRENT_STREAMS, announced to the client). A client with more queues
# the rest itself and sends each when one of its open calls ends, so a burst
# of calls waits in the client that made it instead of in the server's memory.
# gRPC's "overload protection" is switched off for this: with it on, gRPC
# refuses (UNAVAILABLE) a share of the calls over the limit instead of letting
# the client queue them. A burst of 1,000 StartRuns on one channel held ~850
# calls inside the orchestrator, ~8 kB of Python objects each, and left its
# RSS ~15 MB up after the burst; with 100 it held 100 and left ~8 MB, at the
# same speed. Long-lived calls (WatchRun, WatchMethods) count too: a client
# that keeps more of them open on one channel than this waits for one to end,
# so such a client opens more channels (Envoy does so by itself). 0 = no limit.
ENV_MAX_STREAMS = "BATON_MAX_STREAMS_PER_CONNECTION"
DEFAULT_MAX_STREAMS = 100


def server_options(env: Mapping[str, str] = os.environ) -> tuple[tuple[str, int], ...]:
    """The options of every Baton server, with the stream limit from `env`."""
    streams = int_setting(env, ENV_MAX_STREAMS, DEFAULT_MAX_STREAMS, 0)
    if not streams:
        return SERVER_OPTIONS
    return (*SERVER_OPTIONS, ("grpc.max_concurrent_streams", streams),
            ("grpc.http.overload_protection", 0))


class ListenError(RuntimeError):
    """The listen address cannot be bound (in use, or not an address of this host)."""


def bind_problem(host: str, port: int) -> str | None:
    """Why (host, port) cannot be listened on, e.g. "Address already in use";
    None when it can. Port 0 always can."""
    host = host.strip("[]") or "0.0.0.0"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        socket.create_server((host, port), family=family).close()
    except OSError as exc:
        return os.strerror(exc.errno) if exc.errno else str(exc)
    return None


@dataclass(frozen=True)
class Service:
    """One gRPC service to host: its full name, servicer and generated adder."""

    name: str
    servicer: Any
    add_to_server: Callable[[Any, grpc.aio.Server], None]


class App(Protocol):
    """What a service process hosts: its services plus start/stop of its stores."""

    def services(self) -> Sequence[Service]: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class Drainable(Protocol):
    """An App that can end its long-lived streams before the server stops."""

    async def drain(self) -> None: ...


class _ReflectionPool:
    """The default descriptor pool, also resolving `Service.Method` symbols.

    Python's pool cannot find the file of a method by its full name, which
    `grpcurl describe pkg.Service.Method` asks for; its service's file is it.
    """

    def __init__(self) -> None:
        self._pool = descriptor_pool.Default()

    def __getattr__(self, name: str):
        return getattr(self._pool, name)

    def FindFileContainingSymbol(self, symbol: str):  # noqa: N802 - protobuf's name
        try:
            return self._pool.FindFileContainingSymbol(symbol)
        except KeyError:
            parent = symbol.rpartition(".")[0]
            service = self._pool.FindServiceByName(parent)  # KeyError when unknown
            if symbol.rpartition(".")[2] not in service.methods_by_name:
                raise
            return service.file


class _GenericHandlersOnly:
    """The server as generated `add_*_to_server` functions see it: their generic
    handlers are added, their "registered method" handlers are not.

    grpc.aio (1.85) keeps one pending request future per registered method and
    waits on all of them with asyncio.wait for every incoming call, which costs
    Python time in proportion to the number of methods served (dozens in the
    orchestrator) on each call. The generic handlers serve the same methods
    through the same interceptors from a single pending future.
    """

    def __init__(self, server: grpc.aio.Server) -> None:
        self._server = server

    def add_generic_rpc_handlers(self, handlers) -> None:
        self._server.add_generic_rpc_handlers(handlers)

    def add_registered_method_handlers(self, service_name: str, handlers) -> None:
        return None

    def __getattr__(self, name: str):
        return getattr(self._server, name)


class GrpcServer:
    """A grpc.aio server with health, reflection and the shared interceptors."""

    def __init__(self, listen: str, services: Sequence[Service],
                 interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
                 drain_seconds: float = 0.0,
                 options: Sequence[tuple[str, int]] | None = None) -> None:
        self.listen = listen
        self.drain_seconds = drain_seconds
        self._services = list(services)
        self._interceptors = [*interceptors, ErrorInterceptor()]
        self._options = tuple(options) if options is not None else server_options()
        self._server: grpc.aio.Server | None = None
        self._health = health.aio.HealthServicer()
        self.port = 0

    async def start(self) -> int:
        _grpc_env.check_settings()
        server = grpc.aio.server(interceptors=self._interceptors, options=self._options)
        handlers = _GenericHandlersOnly(server)
        for service in self._services:
            service.add_to_server(service.servicer, handlers)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, handlers)
        names = [s.name for s in self._services]
        reflection.enable_server_reflection(
            [*names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
             reflection.SERVICE_NAME], handlers, pool=_ReflectionPool())
        try:
            self.port = server.add_insecure_port(self.listen)
        except RuntimeError:
            self.port = 0
        if self.port == 0:
            host, _, port = self.listen.rpartition(":")
            why = bind_problem(host, int(port)) if port.isdigit() else None
            raise ListenError(f"cannot listen on {self.listen}: "
                              f"{why or 'not an address to listen on'}")
        await server.start()
        self._server = server
        _grpc_env.lower_poller_priority()
        for name in ["", *names]:
            await self._health.set(name, health_pb2.HealthCheckResponse.SERVING)
        return self.port

    async def stop(self, grace: float = 5.0,
                   before_stop: Callable[[], Awaitable[None]] | None = None) -> None:
        """Reports NOT_SERVING for `drain_seconds` (so health checkers and load
        balancers move away while the port still answers), then stops,
        letting calls in flight finish within `grace`."""
        server, self._server = self._server, None
        if server is None:
            return
        await self._health.enter_graceful_shutdown()
        if self.drain_seconds > 0:
            await asyncio.sleep(self.drain_seconds)
        if before_stop is not None:
            await before_stop()
        await server.stop(grace)


def freeze_startup_heap() -> None:
    """Takes what a process holds once it serves (modules, protobuf descriptors,
    tables, compiled schemas: ~130,000 objects in the orchestrator) out of the
    garbage collector's sight, after collecting what starting up left behind.

    Every full collection walks every tracked object. With the startup heap in
    them, the orchestrator's took 60-100 ms each, about one every second under
    a burst of runs, each a stall of the event loop; frozen, they take 1-25 ms.
    Objects made later are collected as before. For a serving process's main
    only: a frozen object that becomes garbage is never collected.
    """
    gc.collect()
    gc.freeze()


async def release_after_busy_spell() -> None:
    """What a server gives back once a busy spell is over: the database
    connections its pools keep idle, then free heap."""
    from ._db import release_idle_connections  # (SQLAlchemy: imported by the stores)

    await release_idle_connections()
    release_free_memory()


async def run_app(app: App, listen: str, *, grace: float = c.DEFAULT_GRACE,
                  drain: float = c.HEALTH_DRAIN,
                  interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
                  stop_margin: float = STOP_MARGIN) -> None:
    """Runs `app` until SIGTERM or SIGINT, then drains and stops it; a stop still
    going `stop_margin` seconds past its drains and grace exits the process."""
    options = server_options()  # a bad setting stops the service before anything started
    pin_malloc_thresholds()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await app.start()
    server = GrpcServer(listen, app.services(), interceptors, drain_seconds=drain,
                        options=options)
    trim: asyncio.Task | None = None
    try:
        port = await server.start()
        freeze_startup_heap()
        trim = loop.create_task(trim_when_idle(release_after_busy_spell), name="trim-when-idle")
        log.info("serving %s on %s (port %d)",
                 ", ".join(s.name for s in app.services()), listen, port)
        await stop.wait()
        log.info("draining (grace %.1fs)", grace)
    finally:
        # Past its drains, its grace and a margin, a stop that has not ended says
        # where it waits and exits with status 1 instead of hanging until killed.
        watchdog = watch_stop(stop_budget(grace, drain, getattr(app, "stop_seconds", 0.0),
                                          stop_margin), loop)
        if trim is not None:
            trim.cancel()
        try:
            await server.stop(grace, before_stop=getattr(app, "drain", None))
            await app.stop()
        finally:
            watchdog.cancel()
    log.info("stopped")


_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def configure_logging(level: str = "INFO") -> None:
    """Logs to stderr at `level` (BATON_LOG_LEVEL); SettingError for a level that is
    none of DEBUG, INFO, WARNING, ERROR, CRITICAL."""
    if level.strip().upper() not in _LEVELS:
        raise SettingError(f"{c.ENV_LOG_LEVEL} must be one of {', '.join(_LEVELS)}, "
                           f"not {level!r}")
    logging.basicConfig(
        level=level.strip().upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def run(main: Callable[[], Any]) -> None:
    """Runs an async main on uvloop when it is installed."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency
        asyncio.run(main())
    else:
        uvloop.run(main())
