"""Audit of changes: one record per mutating RPC, naming the real actor.

The `AuditInterceptor` knows which RPCs of which service change something
(`RULES`) and hands a record of each call to a sink: the orchestrator keeps
them itself; the other services send them to its AuditLog (`RemoteAuditSink`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc
from google.protobuf import json_format

from ._auth import Identity
from ._auth_interceptor import current_identity
from ._ids import new_id
from ._interceptors import WrappedHandlers

_MAX_CHANGES_BYTES = 4096
_MAX_STRING = 500


@dataclass
class AuditEntry:
    """One audited event."""

    actor: str
    action: str
    entity_type: str
    entity: str = ""
    changes: dict[str, Any] = field(default_factory=dict)
    outcome: str = "OK"
    via: str = ""
    roles: tuple[str, ...] = ()
    service: str = ""
    record_id: str = field(default_factory=lambda: new_id("aud_"))
    time: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))


class AuditSink(Protocol):
    def record(self, entry: AuditEntry) -> None: ...


@dataclass(frozen=True)
class Rule:
    """How one RPC is audited: its action, entity type and where the entity's name is.

    `entity` is `req:` or `resp:` plus a dotted field path; `only_if` (a
    response field path) skips calls where that field is false; `summarize`
    names a request field (a message) recorded as its name and size only,
    because the entity keeps it in full (a run's inline definition).
    """

    action: str
    entity_type: str
    entity: str
    only_if: str = ""
    summarize: str = ""


_REG, _SES = "baton.registry.v1.MethodRegistry/", "baton.sessions.v1.SessionOrchestrator/"
_WF, _ORC = "baton.orchestrator.v1.Workflows/", "baton.orchestrator.v1."
RULES: dict[str, Rule] = {
    _REG + "RegisterMethod": Rule("register", "method", "req:method.name"),
    _REG + "UpdateMethod": Rule("update", "method", "req:method.name"),
    _REG + "DeleteMethod": Rule("delete", "method", "req:name"),
    _REG + "RegisterTool": Rule("register", "tool", "req:tool.name"),
    _SES + "CreateSession": Rule("create", "session", "resp:session.session_id"),
    _SES + "FindOrCreateSession": Rule("create", "session", "resp:session.session_id",
                                       only_if="created"),
    _SES + "CloseSession": Rule("close", "session", "req:session_id"),
    _SES + "LinkSessionToCasefile": Rule("link", "session", "req:session_id"),
    _SES + "UpdateSessionContext": Rule("update", "session", "req:session_id"),
    _SES + "TrackExecution": Rule("track", "session", "req:session_id"),
    _WF + "CreateWorkflow": Rule("create", "workflow", "resp:workflow.workflow_id"),
    _WF + "UpdateWorkflow": Rule("update", "workflow", "req:workflow.workflow_id"),
    _WF + "DeleteWorkflow": Rule("delete", "workflow", "req:workflow_id"),
    _WF + "StartRun": Rule("start", "run", "resp:run.run_id", summarize="definition"),
    _WF + "CancelRun": Rule("cancel", "run", "req:run_id"),
    _WF + "RetryRun": Rule("retry", "run", "req:run_id"),
    _ORC + "PolicyEngine/CreatePolicy": Rule("create", "policy", "req:policy.name"),
    _ORC + "PolicyEngine/UpdatePolicy": Rule("update", "policy", "req:policy.name"),
    _ORC + "PolicyEngine/DeletePolicy": Rule("delete", "policy", "req:name"),
    _ORC + "HookManager/RegisterHook": Rule("register", "hook", "req:hook.name"),
    _ORC + "HookManager/DeleteHook": Rule("delete", "hook", "req:name"),
    _ORC + "CircuitBreakers/UpdateCircuitBreakerConfig": Rule(
        "update", "circuit_breaker", "req:endpoint"),
    _ORC + "CircuitBreakers/ResetCircuitBreaker": Rule("reset", "circuit_breaker", "req:endpoint"),
}


def _field(message: Any, path: str) -> Any:
    for part in path.split("."):
        if message is None:
            return None
        message = getattr(message, part, None)
    return message


def _clip(value: Any) -> Any:
    if isinstance(value, str) and len(value) > _MAX_STRING:
        return value[:_MAX_STRING] + "…"
    if isinstance(value, dict):
        return {k: _clip(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clip(v) for v in value]
    return value


def _summary(message: Any) -> dict[str, Any]:
    """What a record keeps of a large message: that it was summarized, its name
    and how many steps it has (the fields a workflow definition has)."""
    out: dict[str, Any] = {"summarized": True}
    name = getattr(message, "name", None)
    if isinstance(name, str) and name:
        out["name"] = _clip(name)
    steps = getattr(message, "steps", None)
    if steps is not None:
        out["steps"] = len(steps)
    return out


def changes_of(request: Any, summarize: str = "") -> dict[str, Any]:
    """The request as JSON, clipped so that one record stays small; the field
    `summarize` (when set) as its summary only."""
    try:
        summary = None
        if summarize and request.HasField(summarize):
            summary = _summary(getattr(request, summarize))
            rest = type(request)()
            rest.CopyFrom(request)
            rest.ClearField(summarize)
            request = rest
        data = _clip(json_format.MessageToDict(request, preserving_proto_field_name=True))
        if summary is not None:
            data[summarize] = summary
    except Exception:  # noqa: BLE001 - a record without changes beats no record
        return {}
    if len(json.dumps(data, default=str)) > _MAX_CHANGES_BYTES:
        return {"truncated": True, "fields": sorted(data)}
    return data


class AuditInterceptor(grpc.aio.ServerInterceptor):
    """Records every call of an audited RPC, whatever its outcome, to `sink`."""

    def __init__(self, sink: AuditSink, service: str,
                 rules: dict[str, Rule] | None = None) -> None:
        self._sink = sink
        self._service = service
        # Keyed as grpc names methods ("/pkg.Service/Rpc").
        self._rules = {f"/{k}": v for k, v in (RULES if rules is None else rules).items()}
        self._wrapped = WrappedHandlers()

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        rule = self._rules.get(method)
        if handler is None or rule is None or not handler.unary_unary:
            return handler
        return self._wrapped.get(method, handler, lambda h: grpc.unary_unary_rpc_method_handler(
            self._wrap(h.unary_unary, rule), request_deserializer=h.request_deserializer,
            response_serializer=h.response_serializer))

    def _wrap(self, fn: Callable, rule: Rule):
        async def handler(request, context):
            response = None
            try:
                response = await fn(request, context)
                return response
            finally:
                # The record (the request as JSON: a whole workflow for StartRun) is
                # made just after the response goes, not before it.
                asyncio.get_running_loop().call_soon(
                    self._record, rule, request, response, context.code(),
                    current_identity())

        return handler

    def _record(self, rule: Rule, request: Any, response: Any, code: grpc.StatusCode | None,
                who: Identity) -> None:
        failed = response is None or (code is not None and code != grpc.StatusCode.OK)
        if not failed and rule.only_if and not _field(response, rule.only_if):
            return
        source, _, path = rule.entity.partition(":")
        entity = _field(request if source == "req" else response, path)
        outcome = "OK" if not failed else getattr(code, "name", None) or "CANCELLED"
        self._sink.record(AuditEntry(
            actor=who.subject, action=rule.action, entity_type=rule.entity_type,
            entity=str(entity or ""), changes=changes_of(request, rule.summarize), outcome=outcome,
            via=who.via, roles=who.roles, service=self._service))
