"""SessionsClient: typed async access to baton.sessions.v1.SessionOrchestrator."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import grpc
from google.protobuf import field_mask_pb2

from baton.sessions.v1 import sessions_pb2 as pb
from baton.sessions.v1 import sessions_pb2_grpc
from baton_core import constants, dict_to_struct

from ._channel import ClientLifecycle

_IDEMPOTENT = [(constants.SESSIONS_SERVICE, name) for name in (
    "GetSession", "CloseSession", "FindOrCreateSession", "ListSessionExecutions",
    "ListSessions")]


class SessionsClient(ClientLifecycle):
    """Client of the session service over one reused channel.

    Every method raises the BatonError subclass matching the returned status.

    Takes the arguments of every client (see ClientLifecycle); address: the session service.
    """

    idempotent = _IDEMPOTENT

    def _bind(self, channel: grpc.aio.Channel) -> None:
        self._stub = sessions_pb2_grpc.SessionOrchestratorStub(channel)


    async def create_session(self, user_id: str, *, casefile_id: str = "",
                             labels: Mapping[str, str] | None = None, request_id: str = "",
                             timeout: float | None = None) -> pb.Session:
        """Starts a new active session; a repeated request_id returns the first one."""
        request = pb.CreateSessionRequest(user_id=user_id, casefile_id=casefile_id,
                                          labels=dict(labels or {}), request_id=request_id)
        response = await self._conn.unary(self._stub.CreateSession, request, timeout)
        return response.session

    async def get_session(self, session_id: str, *, timeout: float | None = None) -> pb.Session:
        response = await self._conn.unary(
            self._stub.GetSession, pb.GetSessionRequest(session_id=session_id), timeout)
        return response.session

    async def close_session(self, session_id: str, *,
                            timeout: float | None = None) -> pb.Session:
        response = await self._conn.unary(
            self._stub.CloseSession, pb.CloseSessionRequest(session_id=session_id), timeout)
        return response.session

    async def find_or_create(self, user_id: str, casefile_id: str = "", *,
                             timeout: float | None = None) -> pb.Session:
        """The active session of (user_id, casefile_id), created when there is none."""
        request = pb.FindOrCreateSessionRequest(user_id=user_id, casefile_id=casefile_id)
        response = await self._conn.unary(self._stub.FindOrCreateSession, request, timeout)
        return response.session

    async def link_session_to_casefile(self, session_id: str, casefile_id: str, *,
                                       timeout: float | None = None) -> pb.Session:
        request = pb.LinkSessionToCasefileRequest(session_id=session_id, casefile_id=casefile_id)
        response = await self._conn.unary(self._stub.LinkSessionToCasefile, request, timeout)
        return response.session

    async def track_execution(self, session_id: str, execution: pb.Execution, *,
                              timeout: float | None = None) -> pb.Execution:
        """Records an executed operation; a repeated execution_id returns the first record."""
        request = pb.TrackExecutionRequest(session_id=session_id, execution=execution)
        response = await self._conn.unary(self._stub.TrackExecution, request, timeout)
        return response.execution

    async def list_session_executions(self, session_id: str, *, page_size: int = 0,
                                      page_token: str = "", timeout: float | None = None,
                                      ) -> pb.ListSessionExecutionsResponse:
        """One page of a session's executions, newest first."""
        request = pb.ListSessionExecutionsRequest(session_id=session_id, page_size=page_size,
                                                  page_token=page_token)
        return await self._conn.unary(self._stub.ListSessionExecutions, request, timeout)

    async def list_sessions(self, *, user_id: str = "", casefile_id: str = "",
                            status: pb.Session.Status = pb.Session.STATUS_UNSPECIFIED,
                            page_size: int = 0,
                            page_token: str = "",
                            timeout: float | None = None) -> pb.ListSessionsResponse:
        """One page of sessions, newest first."""
        request = pb.ListSessionsRequest(user_id=user_id, casefile_id=casefile_id, status=status,
                                         page_size=page_size, page_token=page_token)
        return await self._conn.unary(self._stub.ListSessions, request, timeout)

    async def update_session_context(self, session_id: str, values: Mapping[str, Any], *,
                                     update_mask: Sequence[str] | None = None, etag: str = "",
                                     timeout: float | None = None) -> pb.SessionContext:
        """Sets the keys in `update_mask` (all keys of `values` when None).

        A key named in the mask but absent from `values` is removed. A stale
        `etag` raises Aborted.
        """
        request = pb.UpdateSessionContextRequest(
            session_id=session_id, values=dict_to_struct(dict(values)), etag=etag)
        if update_mask is not None:
            request.update_mask.CopyFrom(field_mask_pb2.FieldMask(paths=list(update_mask)))
        response = await self._conn.unary(self._stub.UpdateSessionContext, request, timeout)
        return response.context

    async def watch_session(self, session_id: str, *,
                            after_sequence: int = 0) -> AsyncIterator[pb.SessionEvent]:
        """Yields the session's events after `after_sequence`, then live ones."""
        request = pb.WatchSessionRequest(session_id=session_id, after_sequence=after_sequence)
        stream = self._conn.stream(self._stub.WatchSession, request)
        try:
            async for response in stream:
                yield response.event
        finally:
            await stream.aclose()
