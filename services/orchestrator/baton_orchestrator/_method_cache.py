"""A local copy of the registry, kept fresh by WatchMethods.

Dispatch reads methods from here instead of asking the registry per call. A
name the cache does not know is looked up once in the registry (it may have
been registered a moment ago); everything else comes from the watch stream.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import grpc

from baton.registry.v1 import registry_pb2, registry_pb2_grpc
from baton_core import Outage, ParamsValidator, duration_to_seconds, struct_to_dict

from ._retry import Retry

log = logging.getLogger("baton.orchestrator.cache")
_EVENT = registry_pb2.WatchMethodsResponse


@dataclass
class CachedMethod:
    """A method with its compiled validator and resolved defaults."""

    proto: registry_pb2.Method
    validator: ParamsValidator
    retry: Retry
    timeout: float | None
    _turn: itertools.count = field(default_factory=itertools.count)

    @classmethod
    def build(cls, method: registry_pb2.Method) -> CachedMethod:
        schema = struct_to_dict(method.input_schema) if method.HasField("input_schema") else None
        return cls(proto=method, validator=ParamsValidator(schema),
                   retry=Retry.from_proto(method.retry_policy if method.HasField("retry_policy")
                                          else None),
                   timeout=duration_to_seconds(method.default_timeout) or None)

    @property
    def name(self) -> str:
        return self.proto.name

    def live_endpoints(self) -> list[registry_pb2.Endpoint]:
        """Endpoints whose lease is current, rotated so callers spread the load.

        The registry owns lease expiry: heartbeats renew leases without an
        event, and the registry's sweeper publishes the change to UNAVAILABLE.
        """
        live = [e for e in self.proto.endpoints
                if e.state == registry_pb2.Endpoint.STATE_AVAILABLE]
        if len(live) > 1:
            shift = next(self._turn) % len(live)
            live = live[shift:] + live[:shift]
        return live


class MethodCache:
    """Methods by name, fed by the registry's WatchMethods stream."""

    def __init__(self, channel: grpc.aio.Channel,
                 metadata: Callable[[], tuple[tuple[str, str], ...]] = tuple) -> None:
        self._stub = registry_pb2_grpc.MethodRegistryStub(channel)
        # The orchestrator's own credentials, fresh for every call.
        self._metadata = metadata
        self._methods: dict[str, CachedMethod] = {}
        self.synced = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._outage = Outage(log, "registry watch")

    async def start(self) -> None:
        self._task = asyncio.create_task(self._follow(), name="method-cache")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def peek(self, name: str) -> CachedMethod | None:
        return self._methods.get(name)

    def names(self) -> list[str]:
        return sorted(self._methods)

    async def get(self, name: str) -> CachedMethod | None:
        """The method called `name`, or None when the registry does not know it."""
        cached = self._methods.get(name)
        if cached is not None:
            return cached
        try:
            reply = await self._stub.GetMethod(registry_pb2.GetMethodRequest(name=name),
                                               timeout=5, metadata=self._metadata())
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise
        # The watch may have delivered it meanwhile; the stream stays the authority.
        return self._methods.setdefault(name, CachedMethod.build(reply.method))

    async def _follow(self) -> None:
        backoff = 0.1
        while True:
            try:
                await self._consume()
            except asyncio.CancelledError:
                raise
            except grpc.aio.AioRpcError as exc:
                self._outage.failed(exc.code().name, 2.0)
            except Exception:  # noqa: BLE001 - keep following whatever happens
                log.exception("registry watch failed; retrying in %.1fs", backoff)
            await asyncio.sleep(backoff)
            backoff = 0.1 if not self._outage.ongoing else min(backoff * 2, 2.0)

    async def _consume(self) -> None:
        fresh: dict[str, CachedMethod] = {}
        async for event in self._stub.WatchMethods(registry_pb2.WatchMethodsRequest(),
                                                   metadata=self._metadata()):
            if event.type == _EVENT.EVENT_TYPE_EXISTING:
                fresh[event.method.name] = CachedMethod.build(event.method)
            elif event.type == _EVENT.EVENT_TYPE_SYNCED:
                self._methods = fresh
                self.synced.set()
                self._outage.recovered()
                log.info("method cache synced: %d methods", len(fresh))
            elif event.type == _EVENT.EVENT_TYPE_UPSERTED:
                self._methods[event.method.name] = CachedMethod.build(event.method)
            elif event.type == _EVENT.EVENT_TYPE_DELETED:
                self._methods.pop(event.method.name, None)
