"""The orchestrator's calls to the sessions service."""

from __future__ import annotations

import asyncio
import logging

import grpc
from sqlalchemy.ext.asyncio import AsyncEngine

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

from . import _session_backlog
from ._session_backlog import StoredBacklog

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
        # The SQL copy of the backlog (`attach`), so that a restart loses none of it.
        self._sql: StoredBacklog | None = None
        self._stored: set[str] = set()
        self._adopter: asyncio.Task[None] | None = None

    async def attach(self, db: AsyncEngine, owner: str) -> None:
        """Keeps the backlog in `db` from now on, as `owner` (the replica's name), and
        takes up what is stored there for it: what it left when it stopped, then
        what replicas that stopped or died left (see _session_backlog)."""
        self._sql = StoredBacklog(db, owner)
        await self._adopt()
        self._adopter = asyncio.create_task(self._adopt_every(), name="sessions-backlog-adopt")

    @property
    def backlog(self) -> int:
        """How many executions wait to be recorded."""
        return len(self._backlog)

    async def close(self) -> None:
        """Stops retrying; what is still waiting stays stored for the next start (what
        could not be stored is lost, and said so)."""
        tasks = [t for t in (self._drainer, self._adopter) if t is not None]
        self._drainer = self._adopter = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._sql is not None:
            await self._sql.close()
        lost = len(set(self._backlog) - self._stored)
        kept = len(self._backlog) - lost
        if kept:
            log.warning("%d executions wait to be recorded in their sessions: the sessions "
                        "service did not answer before the orchestrator stopped; they are "
                        "stored and will be recorded after the next start", kept)
        if lost:
            log.warning("%d executions were not recorded in their sessions: the sessions "
                        "service did not answer before the orchestrator stopped", lost)
        self._backlog.clear()
        self._stored.clear()

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
            await self._defer(execution, identity)
            return
        try:
            await self._send(execution, identity, timeout)
        except grpc.aio.AioRpcError as exc:
            if exc.code() not in _TRANSIENT:
                raise
            self._outage.failed(exc.details() or exc.code().name, _RETRY_MAX)
            await self._defer(execution, identity)

    async def _send(self, execution: sessions_pb2.Execution, identity: Identity,
                    timeout: float) -> None:
        await self._stub.TrackExecution(
            sessions_pb2.TrackExecutionRequest(session_id=execution.session_id,
                                               execution=execution), timeout=timeout,
            metadata=self._metadata(identity))

    async def _defer(self, execution: sessions_pb2.Execution, identity: Identity) -> None:
        if len(self._backlog) >= MAX_BACKLOG:
            dropped = next(iter(self._backlog))
            del self._backlog[dropped]
            log.warning("execution %s was not recorded in its session: %d others wait for "
                        "the sessions service", dropped, MAX_BACKLOG)
            await self._forget(dropped)
        self._backlog[execution.execution_id] = (execution, identity)
        await self._store(execution, identity)
        self._start_drain()

    def _start_drain(self) -> None:
        if self._backlog and (self._drainer is None or self._drainer.done()):
            self._drainer = asyncio.create_task(self._drain(), name="sessions-backlog")

    async def _store(self, execution: sessions_pb2.Execution, identity: Identity) -> None:
        if self._sql is None:
            return
        try:
            await self._sql.store(execution, identity)
        except Exception as exc:  # noqa: BLE001 - the backlog in memory still has it
            log.warning("execution %s waits to be recorded in its session, but only in "
                        "memory (storing it failed: %s)", execution.execution_id, exc)
            return
        self._stored.add(execution.execution_id)

    async def _forget(self, execution_id: str) -> None:
        if execution_id not in self._stored or self._sql is None:
            return
        self._stored.discard(execution_id)
        try:
            await self._sql.forget([execution_id])
        except Exception as exc:  # noqa: BLE001 - recorded already; a later start resends it
            log.warning("execution %s is recorded, but removing it from the stored backlog "
                        "failed (%s); it may be sent again, which is harmless",
                        execution_id, exc)

    async def _adopt(self) -> None:
        """Renews this replica's stored executions and takes up those it does not hold
        yet (its own after a restart, a stopped replica's), oldest first."""
        room = MAX_BACKLOG - len(self._backlog)
        if self._sql is None:
            return
        try:  # full, it still renews its claim on what it holds
            waiting = await self._sql.claim(room, set(self._backlog))
        except Exception as exc:  # noqa: BLE001 - tried again later
            log.warning("the stored backlog of session executions could not be read: %s", exc)
            return
        for item in waiting:
            self._backlog[item.execution.execution_id] = (item.execution, item.identity)
            self._stored.add(item.execution.execution_id)
        if waiting:
            log.info("%d stored executions wait to be recorded in their sessions", len(waiting))
            self._start_drain()

    async def _adopt_every(self) -> None:
        while True:
            await asyncio.sleep(_session_backlog.RENEW_EVERY)
            await self._adopt()

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
            await self._forget(execution_id)
