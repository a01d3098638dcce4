"""The orchestrator's calls to the sessions service."""

from __future__ import annotations

import asyncio
import logging

import grpc

from baton.sessions.v1 import sessions_pb2, sessions_pb2_grpc
from baton_core import (
    FailedPrecondition,
    Identity,
    NotFound,
    Outage,
    ServiceCredentials,
    Unavailable,
    current_identity,
    from_rpc_error,
)

log = logging.getLogger("baton.orchestrator.sessions")

_ACTIVE = sessions_pb2.Session.STATUS_ACTIVE
# Failures of TrackExecution that the sessions service being away explains: the
# execution is recorded later (TrackExecution is idempotent by execution_id).
_TRANSIENT = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
# Executions kept for a later TrackExecution while the sessions service is away.
MAX_BACKLOG = 10_000
_RETRY_FIRST, _RETRY_MAX = 0.5, 10.0


class SessionsGateway:
    """Checks sessions before execution and records executions after it, with the
    orchestrator's own credentials on behalf of the caller (by default the one
    of the RPC being served)."""

    def __init__(self, channel: grpc.aio.Channel,
                 credentials: ServiceCredentials | None = None) -> None:
        self._stub = sessions_pb2_grpc.SessionOrchestratorStub(channel)
        self._credentials = credentials
        # Executions not yet recorded because the sessions service was away, by
        # execution id, oldest first, with the identity they were made under.
        self._backlog: dict[str, tuple[sessions_pb2.Execution, Identity]] = {}
        self._drainer: asyncio.Task[None] | None = None
        self._outage = Outage(log, "recording executions in the sessions service")

    @property
    def backlog(self) -> int:
        """How many executions wait to be recorded."""
        return len(self._backlog)

    async def close(self) -> None:
        """Stops retrying; what is still waiting is lost (and said so)."""
        drainer, self._drainer = self._drainer, None
        if drainer is not None:
            drainer.cancel()
            await asyncio.gather(drainer, return_exceptions=True)
        if self._backlog:
            log.warning("%d executions were not recorded in their sessions: the sessions "
                        "service did not answer before the orchestrator stopped",
                        len(self._backlog))
            self._backlog.clear()

    def _metadata(self, identity: Identity | None) -> tuple[tuple[str, str], ...]:
        if self._credentials is None:
            return ()
        return self._credentials.on_behalf_of(identity or current_identity())

    async def require_active(self, session_id: str, timeout: float,
                             identity: Identity | None = None) -> sessions_pb2.Session:
        try:
            reply = await self._stub.GetSession(
                sessions_pb2.GetSessionRequest(session_id=session_id), timeout=timeout,
                metadata=self._metadata(identity))
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                raise NotFound(f"session {session_id!r} not found", reason="SESSION_NOT_FOUND",
                               metadata={"session_id": session_id}) from exc
            if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise Unavailable(f"sessions service unavailable: {exc.details()}",
                                  reason="SESSIONS_UNAVAILABLE") from exc
            raise from_rpc_error(exc) from exc
        if reply.session.status != _ACTIVE:
            status = sessions_pb2.Session.Status.Name(reply.session.status).removeprefix(
                "STATUS_")
            raise FailedPrecondition(f"session {session_id!r} is {status}",
                                     reason="SESSION_NOT_ACTIVE",
                                     metadata={"session_id": session_id, "status": status})
        return reply.session

    async def track(self, execution: sessions_pb2.Execution, timeout: float = 5.0,
                    identity: Identity | None = None) -> None:
        """Records `execution` in its session; while the sessions service is away (or
        others wait before it), keeps it and records it once the service answers."""
        identity = identity or current_identity()
        if self._backlog:  # keep the order: behind those already waiting
            self._defer(execution, identity)
            return
        try:
            await self._send(execution, identity, timeout)
        except grpc.aio.AioRpcError as exc:
            if exc.code() not in _TRANSIENT:
                raise
            self._outage.failed(exc.details() or exc.code().name, _RETRY_MAX)
            self._defer(execution, identity)

    async def _send(self, execution: sessions_pb2.Execution, identity: Identity,
                    timeout: float) -> None:
        await self._stub.TrackExecution(
            sessions_pb2.TrackExecutionRequest(session_id=execution.session_id,
                                               execution=execution), timeout=timeout,
            metadata=self._metadata(identity))

    def _defer(self, execution: sessions_pb2.Execution, identity: Identity) -> None:
        if len(self._backlog) >= MAX_BACKLOG:
            dropped = next(iter(self._backlog))
            del self._backlog[dropped]
            log.warning("execution %s was not recorded in its session: %d others wait for "
                        "the sessions service", dropped, MAX_BACKLOG)
        self._backlog[execution.execution_id] = (execution, identity)
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain(), name="sessions-backlog")

    async def _drain(self) -> None:
        """Records the backlog oldest first, waiting longer after each failure."""
        delay = _RETRY_FIRST
        while self._backlog:
            execution_id, (execution, identity) = next(iter(self._backlog.items()))
            try:
                await self._send(execution, identity, 5.0)
            except grpc.aio.AioRpcError as exc:
                if exc.code() in _TRANSIENT:
                    self._outage.failed(exc.details() or exc.code().name, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, _RETRY_MAX)
                    continue
                log.warning("execution %s of %s was not recorded in session %s: %s",
                            execution_id, execution.operation, execution.session_id,
                            exc.details())
            self._outage.recovered()
            delay = _RETRY_FIRST
            self._backlog.pop(execution_id, None)
