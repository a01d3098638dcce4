"""Calling workers: endpoint choice, circuit breakers, deadline, retries."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import grpc

from baton.provider.v1 import provider_pb2, provider_pb2_grpc
from baton_core import (
    BatonError,
    DeadlineExceeded,
    Identity,
    ServiceCredentials,
    Unavailable,
    dict_to_struct,
    from_rpc_error,
    insecure_channel,
    struct_to_dict,
)

from ._breakers import Breakers, Ticket
from ._method_cache import CachedMethod
from ._policies import Policy
from ._retry import Retry
from ._worker_channel import (
    WORKER_UNREACHABLE,
    ChannelUnsupported,
    WorkerChannel,
    unreachable,
)

log = logging.getLogger("baton.orchestrator.invoke")

_CHANNEL_OPTIONS = (
    ("grpc.max_receive_message_length", 16 * 1024 * 1024),
    ("grpc.max_send_message_length", 16 * 1024 * 1024),
    ("grpc.keepalive_time_ms", 30_000),
    # A worker is found again sooner than other peers (see baton_core._channels).
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2_000),
)


@dataclass(frozen=True)
class CallContext:
    """Who and what one worker call is for."""

    session_id: str = ""
    run_id: str = ""
    step_id: str = ""
    idempotency_key: str = ""
    actor: str = ""
    roles: tuple[str, ...] = ()
    hook_context: dict[str, Any] = field(default_factory=dict)


@dataclass
class InvokeOutcome:
    result: dict[str, Any]
    attempts: int
    worker_id: str
    worker_address: str
    worker_seconds: float
    result_struct: Any = None


class Invoker:
    """Invokes methods on their workers over one reused gRPC channel per worker:
    through OpenChannel streams, or unary Invoke calls for a worker without it.

    With `breakers`, each endpoint whose config (its override, else the
    policy's) asks for one is guarded by a circuit breaker; endpoints without
    a config cost no Redis call.
    """

    def __init__(self, breakers: Breakers | None = None,
                 credentials: ServiceCredentials | None = None) -> None:
        self._stubs: dict[str, provider_pb2_grpc.MethodProviderStub] = {}
        self._channels: list[grpc.aio.Channel] = []
        self._workers: dict[str, WorkerChannel] = {}
        self.breakers = breakers
        self._credentials = credentials

    def _stub(self, address: str) -> provider_pb2_grpc.MethodProviderStub:
        stub = self._stubs.get(address)
        if stub is None:
            channel = insecure_channel(address, _CHANNEL_OPTIONS)
            self._channels.append(channel)
            stub = self._stubs[address] = provider_pb2_grpc.MethodProviderStub(channel)
        return stub

    def _worker(self, address: str) -> WorkerChannel | None:
        worker = self._workers.get(address)
        if worker is None:
            worker = self._workers[address] = WorkerChannel(address, self._stub(address),
                                                            self._own_metadata)
        return None if worker.unsupported else worker

    def _own_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._credentials.own() if self._credentials is not None else ()

    async def _call(self, address: str, invocation: provider_pb2.Invocation, timeout: float,
                    ctx: CallContext) -> provider_pb2.InvokeResponse:
        """One invocation on the worker at `address`; failures raise BatonErrors."""
        worker = self._worker(address)
        if worker is not None:
            try:
                return await worker.send(invocation, timeout)
            except ChannelUnsupported:
                log.info("the worker at %s has no OpenChannel; calling Invoke", address)
        metadata = (self._credentials.on_behalf_of(Identity(ctx.actor, ctx.roles))
                    if self._credentials is not None else ())
        try:
            return await self._stub(address).Invoke(invocation.request, timeout=timeout,
                                                     metadata=metadata)
        except grpc.aio.AioRpcError as exc:
            error = from_rpc_error(exc)
            if exc.code() == grpc.StatusCode.UNAVAILABLE and unreachable(exc):
                error.reason = WORKER_UNREACHABLE
            raise error from exc

    async def close(self) -> None:
        workers, self._workers = self._workers, {}
        await asyncio.gather(*(w.close() for w in workers.values()))
        channels, self._channels, self._stubs = self._channels, [], {}
        for channel in channels:
            await channel.close()

    async def _pick(self, method: CachedMethod, endpoints: list, policy: Policy | None,
                    deadline: float) -> tuple[Any, Ticket | None]:
        """The first endpoint whose breaker admits a call; CIRCUIT_OPEN when none does."""
        if self.breakers is None:
            return endpoints[0], None
        refusal: BatonError | None = None
        for endpoint in endpoints:
            config = self.breakers.config_for(endpoint.address, policy)
            if config is None:
                return endpoint, None
            lease = max(deadline - time.monotonic(), 0.0) + 5.0
            try:
                return endpoint, await self.breakers.acquire(endpoint.address, config, lease,
                                                             method.name)
            except Unavailable as exc:
                refusal = refusal or exc
        assert refusal is not None
        raise refusal

    async def invoke(self, method: CachedMethod, params: dict[str, Any], ctx: CallContext,
                     deadline: float, retry: Retry | None = None,
                     first_attempt: int = 1, policy: Policy | None = None,
                     params_struct: Any = None) -> InvokeOutcome:
        """Calls a live worker, retrying per policy, never past `deadline` (monotonic).

        `params_struct`, when given, is `params` as a Struct already."""
        retry = retry or method.retry
        struct = params_struct if params_struct is not None else dict_to_struct(params)
        attempt = first_attempt - 1
        # Endpoints that failed this call: a retry goes elsewhere while there is an
        # elsewhere. Those serving another version of the method are left out.
        failed: set[str] = set()
        other_version: set[str] = set()
        # Endpoints the call never started on (stopping, or not reachable at all): while
        # another endpoint is left, the call goes there whatever the retry policy.
        unstarted: set[str] = set()
        while True:
            attempt += 1
            endpoints = method.live_endpoints()
            if failed or other_version or unstarted:  # a retry: no copies on a first attempt
                live = [e for e in endpoints if e.address not in other_version]
                endpoints = [e for e in live
                             if e.address not in failed and e.address not in unstarted] or live
            if not endpoints:
                error: BatonError = Unavailable(
                    f"no live worker serves {method.name}"
                    + (f" version {method.proto.version} (the workers at "
                       f"{', '.join(sorted(other_version))} serve another version)"
                       if other_version else ""),
                    reason="NO_LIVE_WORKER", metadata={"method": method.name})
                code = grpc.StatusCode.UNAVAILABLE
            else:
                endpoint, ticket = endpoints[0], None
                if self.breakers is not None and self.breakers.config_for(endpoint.address,
                                                                          policy) is not None:
                    endpoint, ticket = await self._pick(method, endpoints, policy, deadline)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise DeadlineExceeded(f"deadline passed before calling {method.name}")
                started = time.perf_counter()
                try:
                    reply = await self._call(endpoint.address,
                                             _invocation(method, struct, ctx, attempt),
                                             remaining, ctx)
                except BatonError as exc:
                    code = exc.code
                    if ticket is not None and self.breakers is not None:
                        await self.breakers.record(ticket, code)
                    if exc.reason in _OTHER_VERSION:
                        # Registered for an earlier (or later) version: not a failure
                        # of this call, and no attempt of it.
                        other_version.add(endpoint.address)
                        attempt -= 1
                        continue
                    if exc.reason in _NOT_STARTED and any(
                            e.address not in failed and e.address not in unstarted
                            and e.address not in other_version and e is not endpoint
                            for e in endpoints):
                        # Nothing of the call ran there, and another endpoint is left:
                        # no attempt of it. (With none left it counts as a failure, and
                        # the policy decides, e.g. to wait for the worker to be back.)
                        unstarted.add(endpoint.address)
                        attempt -= 1
                        continue
                    failed.add(endpoint.address)
                    error = exc
                    error.metadata.setdefault("worker_address", endpoint.address)
                    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                        raise DeadlineExceeded(
                            f"{method.name} did not finish within its deadline",
                            metadata={"worker_address": endpoint.address}) from exc
                else:
                    if ticket is not None and self.breakers is not None:
                        await self.breakers.record(ticket, None)
                    return InvokeOutcome(
                        result=struct_to_dict(reply.result), attempts=attempt - first_attempt + 1,
                        worker_id=endpoint.worker_id, worker_address=endpoint.address,
                        worker_seconds=time.perf_counter() - started, result_struct=reply.result)
            if not retry.should_retry(code, attempt):
                error.metadata.setdefault("attempts", str(attempt - first_attempt + 1))
                raise error
            pause = retry.delay(attempt)
            if time.monotonic() + pause >= deadline:
                raise error
            log.info("retrying %s after %s (attempt %d, %.3fs)", method.name, code.name,
                     attempt, pause)
            await asyncio.sleep(pause)


# What a worker answers for a method or version it does not serve (baton_sdk).
_OTHER_VERSION = frozenset({"VERSION_NOT_SERVED", "METHOD_NOT_SERVED"})
# A call that never started: what a stopping worker answers (baton_sdk) for an
# invocation it refused, or no connection to the worker at all.
_NOT_STARTED = frozenset({"WORKER_DRAINING", WORKER_UNREACHABLE})


def _invocation(method: CachedMethod, params: Any, ctx: CallContext,
                attempt: int) -> provider_pb2.Invocation:
    """An Invocation of `method` with its request filled in, field by field: building
    it from keyword arguments copies each nested message once more."""
    invocation = provider_pb2.Invocation()
    request = invocation.request
    request.method, request.version = method.name, method.proto.version
    request.params.CopyFrom(params)
    context = request.context
    context.session_id, context.run_id, context.step_id = ctx.session_id, ctx.run_id, ctx.step_id
    context.attempt, context.idempotency_key, context.actor = (attempt, ctx.idempotency_key,
                                                               ctx.actor)
    if ctx.hook_context:
        context.hook_context.CopyFrom(dict_to_struct(ctx.hook_context))
    return invocation
