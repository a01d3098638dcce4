"""Worker: serves decorated methods and keeps them registered under a lease."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import Callable, Iterable
from typing import Any

from baton_core import (
    AuthConfig,
    AuthInterceptor,
    BatonError,
    DeadlineExceeded,
    GrpcServer,
    Unavailable,
    constants,
    freeze_startup_heap,
)

from ._method import MethodDefinition
from ._provider import UNWIND_TIMEOUT, MethodProvider
from ._registry_client import RegistryClient

log = logging.getLogger("baton.worker")

DEFAULT_REGISTRY_ADDR = f"127.0.0.1:{constants.REGISTRY_PORT}"
_UNREACHABLE = (Unavailable, DeadlineExceeded)
_WITHDRAWN_LEASE = 0.001  # seconds; a lease_ttl of 0 would mean the registry's default
_WITHDRAW_TIMEOUT = 1.0  # seconds a stopping worker waits for the registry


class Worker:
    """A process's MethodProvider server plus its registration with the registry.

    ``start()`` serves the methods (with health and reflection), registers each
    with the registry under a lease, and renews the lease every
    ``heartbeat_interval``; ``stop()`` ends the lease (callers stop picking the
    worker) and drains the server.
    A registry that cannot be reached at start is retried on every heartbeat.

    Args:
        methods: Functions decorated with @method (bound methods allowed).
        registry_addr: host:port of the registry; None serves without registering.
        listen: Address to bind; port 0 picks a free port.
        advertise_host: Host put in the address the registry hands to callers.
        worker_id: Stable id of this worker; a unique one by default.
        heartbeat_interval: Seconds between heartbeats; lease_ttl / 3 by default.
        lease_ttl: Seconds a registration stays valid without a heartbeat.
        token: Bearer token for the registry; None: BATON_TOKEN when set.
        shutdown_grace: Seconds calls in flight may take to finish on stop.
        auth: Verify callers with these keys: only callers holding the `service`
            (the orchestrator) or `admin` role may Invoke. None serves without
            checking, for workers that hold no key.

    Raises:
        ValueError: No methods, two methods of one name, a lease_ttl <= 0, or a
            heartbeat_interval not between 0 and lease_ttl.
        SettingError: `auth` is on but holds no key to verify callers with.
    """

    def __init__(self, methods: Iterable[Callable[..., Any] | MethodDefinition], *,
                 registry_addr: str | None = DEFAULT_REGISTRY_ADDR,
                 listen: str = "127.0.0.1:0", advertise_host: str = "127.0.0.1",
                 worker_id: str | None = None, heartbeat_interval: float | None = None,
                 lease_ttl: float = 10.0, token: str | None = None,
                 shutdown_grace: float = 5.0, auth: AuthConfig | None = None) -> None:
        self._provider = MethodProvider(methods)
        if not self._provider.definitions:
            raise ValueError("a Worker needs at least one method")
        if lease_ttl <= 0:
            raise ValueError("lease_ttl must be positive")
        if heartbeat_interval is not None and not 0 < heartbeat_interval < lease_ttl:
            # Beats further apart than the lease let it lapse between them.
            raise ValueError(f"heartbeat_interval must be more than 0 and less than "
                             f"lease_ttl ({lease_ttl:g} s), not {heartbeat_interval:g}")
        self.registry_addr = registry_addr or None
        self.listen = listen
        self.advertise_host = advertise_host
        self.worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{os.urandom(3).hex()}"
        self.lease_ttl = lease_ttl
        self.heartbeat_interval = heartbeat_interval or lease_ttl / 3
        self.shutdown_grace = shutdown_grace
        self.address: str | None = None
        self._token = token
        if auth is not None and auth.enabled:
            auth.check()  # a worker that could verify nobody would refuse every call
        self._auth = auth if auth is not None and auth.enabled else None
        self._server: GrpcServer | None = None
        self._registry: RegistryClient | None = None
        self._heartbeats: asyncio.Task[None] | None = None
        self._unregistered: set[str] = set()

    @property
    def definitions(self) -> list[MethodDefinition]:
        return self._provider.definitions

    async def __aenter__(self) -> Worker:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Serves the methods and registers them.

        Raises:
            RuntimeError: Already started, or the listen address cannot be bound.
            BatonError: The registry rejected a method (e.g. InvalidArgument).
        """
        if self._server is not None:
            raise RuntimeError("worker already started")
        interceptors = [AuthInterceptor(self._auth)] if self._auth else []
        server = GrpcServer(self.listen, [self._provider.service()], interceptors)
        port = await server.start()
        self._server = server
        self.address = f"{self.advertise_host}:{port}"
        log.info("worker %s serving %s on %s", self.worker_id,
                 ", ".join(d.name for d in self.definitions), self.address)
        if self.registry_addr is None:
            return
        self._registry = RegistryClient(self.registry_addr, token=self._token,
                                        timeout=max(1.0, min(5.0, self.heartbeat_interval)))
        self._unregistered = {d.name for d in self.definitions}
        try:
            await self._register()
        except _UNREACHABLE as exc:
            log.warning("registry %s unreachable (%s); retrying on every heartbeat",
                        self.registry_addr, exc.message)
        except BaseException:
            await self.stop()
            raise
        self._heartbeats = asyncio.create_task(self._heartbeat_loop(),
                                               name=f"baton-heartbeat-{self.worker_id}")

    async def stop(self) -> None:
        """Stops heartbeating and ends the lease, then drains and stops the server.
        Safe to call twice."""
        task, self._heartbeats = self._heartbeats, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        registry, self._registry = self._registry, None
        if registry is not None:
            await self._withdraw(registry)
            await registry.close()
        server, self._server = self._server, None
        if server is not None:
            self._provider.drain()
            await server.stop(self.shutdown_grace)
            # Calls cut at the end of the grace period are still unwinding: left to the
            # event loop's close, grpc would log each one's CancelledError as a failure.
            await self._provider.wait_closed(UNWIND_TIMEOUT)
            log.info("worker %s stopped", self.worker_id)

    async def run(self) -> None:
        """Starts, serves until SIGTERM or SIGINT, then stops."""
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        signals = (signal.SIGTERM, signal.SIGINT)
        for sig in signals:
            loop.add_signal_handler(sig, stopping.set)
        try:
            await self.start()
            freeze_startup_heap()
            await stopping.wait()
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)
            await self.stop()

    async def _register(self, names: Iterable[str] | None = None) -> None:
        """Registers the named methods (default: those not yet registered)."""
        assert self._registry is not None and self.address is not None
        wanted = set(self._unregistered if names is None else names)
        definitions = [d for d in self.definitions if d.name in wanted]
        self._unregistered |= wanted
        results = await asyncio.gather(*(
            self._registry.register_method(d, worker_id=self.worker_id, address=self.address,
                                           lease_ttl=self.lease_ttl)
            for d in definitions), return_exceptions=True)
        for definition, result in zip(definitions, results, strict=True):
            if not isinstance(result, BaseException):
                self._unregistered.discard(definition.name)
                if result.version != definition.version:
                    log.warning("the registry keeps %s at version %s, which other workers "
                                "serve; this worker serves %s, so calls for %s pass it over",
                                definition.name, result.version, definition.version,
                                result.version)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0]
        log.info("registered %s with %s", ", ".join(sorted(wanted)), self.registry_addr)

    async def _withdraw(self, registry: RegistryClient) -> None:
        """Ends the lease now rather than lease_ttl after the last beat, so that callers
        stop picking this worker while it drains (a refused call fails unless retried)."""
        registered = [d.name for d in self.definitions if d.name not in self._unregistered]
        if self.address is None or not registered:
            return
        try:
            await _beat(registry, self.worker_id, self.address, registered,
                        lease_ttl=_WITHDRAWN_LEASE, timeout=_WITHDRAW_TIMEOUT)
        except BatonError as exc:
            log.warning("could not withdraw from %s (%s); the lease lapses by itself",
                        self.registry_addr, exc.message)

    async def _heartbeat(self) -> None:
        assert self._registry is not None and self.address is not None
        if self._unregistered:
            await self._register()
        unknown = await _beat(self._registry, self.worker_id, self.address,
                              [d.name for d in self.definitions], lease_ttl=self.lease_ttl)
        if unknown:
            log.warning("registry forgot %s; registering again", ", ".join(unknown))
            await self._register(unknown)

    async def _heartbeat_loop(self) -> None:
        failing = False  # log a failing registry once, not on every beat
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            try:
                await self._heartbeat()
            except Exception as exc:  # noqa: BLE001 - the loop must outlive any one failure
                if not failing:
                    detail = exc.message if isinstance(exc, BatonError) else repr(exc)
                    log.warning("heartbeat to %s failed (%s); retrying every %.3gs",
                                self.registry_addr, detail, self.heartbeat_interval)
                failing = True
            else:
                if failing:
                    log.info("heartbeats to %s succeed again", self.registry_addr)
                failing = False


async def _beat(registry: RegistryClient, worker_id: str, address: str, names: list[str],
                **kwargs: Any) -> list[str]:
    """Renews the lease on `names`, in as many Heartbeats as the registry's limit per
    call asks; the names the registry does not know the worker for."""
    step = constants.MAX_HEARTBEAT_METHODS
    replies = await asyncio.gather(*(
        registry.heartbeat(worker_id, address, method_names=names[i:i + step], **kwargs)
        for i in range(0, len(names), step)))
    return [name for reply in replies for name in reply.unknown_methods]
