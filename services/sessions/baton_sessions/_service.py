"""The SessionOrchestrator gRPC servicer: validation, conversion, nothing else."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from baton.sessions.v1 import sessions_pb2 as pb
from baton.sessions.v1 import sessions_pb2_grpc
from baton_core import (
    InvalidArgument,
    PermissionDenied,
    access,
    current_identity,
    decode_page_token,
    duration_problems,
    encode_page_token,
    new_id,
    page_size,
    require_json_numbers,
    struct_to_dict,
)
from baton_core import constants as c

from . import _convert as cv
from ._context import check_paths, check_size
from ._events import EventHub, watch
from ._records import now_us
from ._sessions import Sessions

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000

_MAX_ID = 256
_MAX_LABELS = 64


def _require(field: str, value: str) -> str:
    if not value:
        raise InvalidArgument(f"{field} is required", violations=[(field, "must not be empty")])
    return _bounded(field, value)


def _bounded(field: str, value: str) -> str:
    if len(value) > _MAX_ID:
        raise InvalidArgument(f"{field} is too long",
                              violations=[(field, f"at most {_MAX_ID} characters")])
    return value


def _check_labels(labels: dict[str, str]) -> dict[str, str]:
    if len(labels) > _MAX_LABELS:
        raise InvalidArgument("too many labels",
                              violations=[("labels", f"at most {_MAX_LABELS} entries")])
    for key, value in labels.items():
        _require(f"labels[{key!r}]", key)
        _bounded(f"labels[{key!r}]", value)
    return dict(labels)


def _manages_any() -> bool:
    """Whether the caller may act on every user's sessions: it holds a managing
    role, or it is a service acting for a workflow run, whose session was checked
    when the run started (such a call names the run's actor with no roles)."""
    who = current_identity()
    return bool(access.MANAGERS.intersection(who.roles)) or (
        not who.roles and who.via.startswith(f"{access.SERVICE}:"))


def _require_owner(user_id: str) -> None:
    who = current_identity()
    if who.subject != user_id and not _manages_any():
        raise PermissionDenied(
            f"{who.subject} may act only on their own sessions, not on those of {user_id!r} "
            f"(roles {', '.join(sorted(access.MANAGERS))} may act on any)",
            reason="SESSION_NOT_OWNED", metadata={"user_id": user_id, "actor": who.subject})


class SessionsServicer(sessions_pb2_grpc.SessionOrchestratorServicer):
    """Answers SessionOrchestrator RPCs from `Sessions`.

    With auth on (`owners_only`), a caller without a managing role acts only on
    sessions whose user_id is its own subject: it creates, reads, changes,
    watches and lists only those; anything else is PERMISSION_DENIED.
    """

    def __init__(self, sessions: Sessions, hub: EventHub, owners_only: bool = False) -> None:
        self.sessions = sessions
        self.hub = hub
        self.owners_only = owners_only

    def _check_owner(self, user_id: str) -> None:
        if self.owners_only:
            _require_owner(user_id)

    def _reader(self) -> str:
        """The user the caller must be to act on a session ('' for anyone)."""
        return current_identity().subject if self.owners_only and not _manages_any() else ""

    async def _owned(self, session_id: str) -> str:
        """`session_id`, required, after checking the caller may act on it."""
        _require("session_id", session_id)
        if reader := self._reader():
            _require_owner((await self.sessions.get(session_id, reader)).user_id)
        return session_id

    async def CreateSession(self, request: pb.CreateSessionRequest,
                            context: grpc.aio.ServicerContext) -> pb.CreateSessionResponse:
        self._check_owner(_require("user_id", request.user_id))
        record = await self.sessions.create(
            request.user_id, _bounded("casefile_id", request.casefile_id),
            _check_labels(dict(request.labels)), _bounded("request_id", request.request_id))
        return pb.CreateSessionResponse(session=cv.session_to_proto(record))

    async def GetSession(self, request: pb.GetSessionRequest,
                         context: grpc.aio.ServicerContext) -> pb.GetSessionResponse:
        record = await self.sessions.get(_require("session_id", request.session_id),
                                         self._reader())
        self._check_owner(record.user_id)
        response = pb.GetSessionResponse()
        cv.fill_session(response.session, record)
        return response

    async def CloseSession(self, request: pb.CloseSessionRequest,
                           context: grpc.aio.ServicerContext) -> pb.CloseSessionResponse:
        record = await self.sessions.close(await self._owned(request.session_id))
        return pb.CloseSessionResponse(session=cv.session_to_proto(record))

    async def FindOrCreateSession(
            self, request: pb.FindOrCreateSessionRequest,
            context: grpc.aio.ServicerContext) -> pb.FindOrCreateSessionResponse:
        self._check_owner(_require("user_id", request.user_id))
        record, created = await self.sessions.find_or_create(
            request.user_id, _bounded("casefile_id", request.casefile_id))
        return pb.FindOrCreateSessionResponse(session=cv.session_to_proto(record),
                                              created=created)

    async def LinkSessionToCasefile(
            self, request: pb.LinkSessionToCasefileRequest,
            context: grpc.aio.ServicerContext) -> pb.LinkSessionToCasefileResponse:
        record = await self.sessions.link(await self._owned(request.session_id),
                                          _require("casefile_id", request.casefile_id))
        return pb.LinkSessionToCasefileResponse(session=cv.session_to_proto(record))

    async def TrackExecution(self, request: pb.TrackExecutionRequest,
                             context: grpc.aio.ServicerContext) -> pb.TrackExecutionResponse:
        session_id = _require("session_id", request.session_id)
        given = request.execution
        _require("execution.operation", given.operation)
        for field in ("execution_id", "run_id", "step_id", "actor"):
            _bounded(f"execution.{field}", getattr(given, field))
        if bad := duration_problems(given.duration, "execution.duration"):
            raise InvalidArgument("execution.duration is not a valid duration", violations=bad)
        if given.duration.seconds < 0 or given.duration.nanos < 0:
            raise InvalidArgument("duration must not be negative",
                                  violations=[("execution.duration", "must be >= 0")])
        execution = cv.execution_from_proto(given, session_id, given.execution_id or new_id(),
                                            now_us())
        require_json_numbers(execution.result, "execution.result")
        check_size(execution.result, c.MAX_EXECUTION_RESULT_BYTES, what="execution.result",
                   field="execution.result")
        stored = await self.sessions.track(execution)
        return pb.TrackExecutionResponse(execution=cv.execution_to_proto(stored))

    async def ListSessionExecutions(
            self, request: pb.ListSessionExecutionsRequest,
            context: grpc.aio.ServicerContext) -> pb.ListSessionExecutionsResponse:
        session_id = await self._owned(request.session_id)
        size = page_size(request.page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        scope = f"executions\0{session_id}"
        before = decode_page_token(request.page_token, scope, seq=int).get("seq", 0)
        if not before:
            hot = await self.sessions.recent_executions(session_id, size)
            if hot is not None:
                encoded, last = hot
                return pb.ListSessionExecutionsResponse(
                    executions=[cv.decode_execution(m) for m in encoded],
                    next_page_token=encode_page_token({"seq": last}, scope) if last else "")
        rows = await self.sessions.executions(session_id, size + 1, before)
        token = encode_page_token({"seq": rows[size - 1].seq}, scope) if len(rows) > size else ""
        return pb.ListSessionExecutionsResponse(
            executions=[cv.execution_to_proto(x) for x in rows[:size]], next_page_token=token)

    async def ListSessions(self, request: pb.ListSessionsRequest,
                           context: grpc.aio.ServicerContext) -> pb.ListSessionsResponse:
        status = cv.session_status_name(request.status)
        if request.status and not status:
            raise InvalidArgument(f"unknown status {request.status}",
                                  violations=[("status", "not a Session.Status value")])
        user_id = request.user_id
        if self.owners_only and not _manages_any():
            user_id = user_id or current_identity().subject
            _require_owner(user_id)
        scope = f"sessions\0{user_id}\0{request.casefile_id}\0{status}"
        size = page_size(request.page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        before = decode_page_token(request.page_token, scope, id=str).get("id", "")
        rows = await self.sessions.list(
            _bounded("user_id", user_id), _bounded("casefile_id", request.casefile_id),
            status, size + 1, before)
        token = encode_page_token({"id": rows[size - 1].session_id}, scope) \
            if len(rows) > size else ""
        return pb.ListSessionsResponse(sessions=[cv.session_to_proto(s) for s in rows[:size]],
                                       next_page_token=token)

    async def UpdateSessionContext(
            self, request: pb.UpdateSessionContextRequest,
            context: grpc.aio.ServicerContext) -> pb.UpdateSessionContextResponse:
        paths = list(request.update_mask.paths)
        if request.keys:
            if paths:
                raise InvalidArgument("give the keys to change in keys or in update_mask, "
                                      "not both", violations=[("keys", "not with update_mask")])
            paths = list(request.keys)
        check_paths(paths, "keys" if request.keys else "update_mask.paths")
        values = struct_to_dict(request.values)
        require_json_numbers(values, "values")
        record = await self.sessions.update_context(
            await self._owned(request.session_id), values, paths, request.etag)
        return pb.UpdateSessionContextResponse(context=cv.context_to_proto(record))

    async def WatchSession(self, request: pb.WatchSessionRequest,
                           context: grpc.aio.ServicerContext
                           ) -> AsyncIterator[pb.WatchSessionResponse]:
        if request.after_sequence < 0:
            raise InvalidArgument("after_sequence must not be negative",
                                  violations=[("after_sequence", "must be >= 0")])
        events = watch(self.hub, self.sessions.store, self.sessions.history,
                       await self._owned(request.session_id), request.after_sequence)
        async for event in events:
            yield pb.WatchSessionResponse(event=cv.event_to_proto(event))

