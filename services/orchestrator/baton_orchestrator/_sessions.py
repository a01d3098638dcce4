"""The orchestrator's calls to the sessions service."""

from __future__ import annotations

import grpc

from baton.sessions.v1 import sessions_pb2, sessions_pb2_grpc
from baton_core import (
    FailedPrecondition,
    Identity,
    NotFound,
    ServiceCredentials,
    Unavailable,
    current_identity,
    from_rpc_error,
)

_ACTIVE = sessions_pb2.Session.STATUS_ACTIVE


class SessionsGateway:
    """Checks sessions before execution and records executions after it, with the
    orchestrator's own credentials on behalf of the caller (by default the one
    of the RPC being served)."""

    def __init__(self, channel: grpc.aio.Channel,
                 credentials: ServiceCredentials | None = None) -> None:
        self._stub = sessions_pb2_grpc.SessionOrchestratorStub(channel)
        self._credentials = credentials

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
        await self._stub.TrackExecution(
            sessions_pb2.TrackExecutionRequest(session_id=execution.session_id,
                                               execution=execution), timeout=timeout,
            metadata=self._metadata(identity))
