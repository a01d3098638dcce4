"""The orchestrator's calls to the sessions service."""

from __future__ import annotations

import grpc

from baton.sessions.v1 import sessions_pb2, sessions_pb2_grpc
from baton_core import FailedPrecondition, NotFound, Unavailable, from_rpc_error

_ACTIVE = sessions_pb2.Session.STATUS_ACTIVE


class SessionsGateway:
    """Checks sessions before execution and records executions after it."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = sessions_pb2_grpc.SessionOrchestratorStub(channel)

    async def require_active(self, session_id: str, timeout: float) -> sessions_pb2.Session:
        try:
            reply = await self._stub.GetSession(
                sessions_pb2.GetSessionRequest(session_id=session_id), timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                raise NotFound(f"session {session_id} does not exist", reason="SESSION_NOT_FOUND",
                               metadata={"session_id": session_id}) from exc
            if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise Unavailable(f"sessions service unavailable: {exc.details()}",
                                  reason="SESSIONS_UNAVAILABLE") from exc
            raise from_rpc_error(exc) from exc
        if reply.session.status != _ACTIVE:
            status = sessions_pb2.Session.Status.Name(reply.session.status)
            raise FailedPrecondition(f"session {session_id} is {status}",
                                     reason="SESSION_NOT_ACTIVE",
                                     metadata={"session_id": session_id, "status": status})
        return reply.session

    async def track(self, execution: sessions_pb2.Execution, timeout: float = 5.0) -> None:
        await self._stub.TrackExecution(
            sessions_pb2.TrackExecutionRequest(session_id=execution.session_id,
                                               execution=execution), timeout=timeout)
