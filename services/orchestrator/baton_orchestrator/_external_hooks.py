"""External hooks: processes implementing `baton.hook.v1.Hook`, called over gRPC."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import json_format

from baton.hook.v1 import hook_pb2, hook_pb2_grpc
from baton.orchestrator.v1 import hooks_pb2
from baton_core import (
    FailedPrecondition,
    Identity,
    Internal,
    InvalidArgument,
    PermissionDenied,
    ServiceCredentials,
    datetime_to_timestamp,
    dict_to_struct,
    duration_to_seconds,
    seconds_to_duration,
    struct_to_dict,
)

from ._hooks import FAIL_CLOSED, FAIL_OPEN, POST, PRE, HookInput, HookOutcome, HookRejected

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
_ADDRESS = re.compile(r"^[A-Za-z0-9.\-\[\]:]+:\d{1,5}$")
DEFAULT_ORDER = 1000
DEFAULT_TIMEOUT = 1.0
_REJECT = hook_pb2.BeforeDispatchResponse
_DECISIONS = frozenset({_REJECT.DECISION_UNSPECIFIED, _REJECT.DECISION_ALLOW,
                        _REJECT.DECISION_REJECT})
_STAGES = {hooks_pb2.Hook.STAGE_PRE: PRE, hooks_pb2.Hook.STAGE_POST: POST}
_MODES = {hooks_pb2.Hook.FAILURE_MODE_UNSPECIFIED: FAIL_OPEN,
          hooks_pb2.Hook.FAILURE_MODE_FAIL_OPEN: FAIL_OPEN,
          hooks_pb2.Hook.FAILURE_MODE_FAIL_CLOSED: FAIL_CLOSED}


@dataclass(frozen=True)
class HookSpec:
    """A registered external hook."""

    name: str
    stage: str
    address: str
    order: int = DEFAULT_ORDER
    failure_mode: str = FAIL_OPEN
    timeout: float = DEFAULT_TIMEOUT
    skippable: bool = False
    description: str = ""
    create_time: dt.datetime | None = None
    update_time: dt.datetime | None = None

    @classmethod
    def from_proto(cls, message: hooks_pb2.Hook) -> HookSpec:
        return cls(name=message.name, stage=_STAGES.get(message.stage, ""),
                   address=message.address, order=message.order or DEFAULT_ORDER,
                   failure_mode=_MODES.get(message.failure_mode, FAIL_OPEN),
                   timeout=duration_to_seconds(message.timeout) or DEFAULT_TIMEOUT,
                   skippable=message.skippable, description=message.description)

    def to_json(self) -> dict[str, Any]:
        return json_format.MessageToDict(hook_to_proto(self), preserving_proto_field_name=True)


def validate_hook(message: hooks_pb2.Hook, builtin_names: set[str]) -> None:
    """Raises InvalidArgument (or FailedPrecondition for a built-in's name)."""
    if message.name in builtin_names:
        raise FailedPrecondition(f"{message.name!r} is a built-in hook", reason="HOOK_BUILTIN",
                                 metadata={"hook": message.name})
    problems = []
    if not _NAME.match(message.name):
        problems.append(("hook.name", "must be 1-63 lowercase letters, digits, '.', '_', '-'"))
    if message.stage not in _STAGES:
        problems.append(("hook.stage", "must be STAGE_PRE or STAGE_POST"))
    if not _ADDRESS.match(message.address):
        problems.append(("hook.address", "must be host:port"))
    if message.order < 0:
        problems.append(("hook.order", "must not be negative"))
    if not 0 <= duration_to_seconds(message.timeout) <= 60:
        problems.append(("hook.timeout", "must be between 0 and 60s"))
    if problems:
        raise InvalidArgument("invalid hook: " + "; ".join(f"{f}: {d}" for f, d in problems),
                              reason="INVALID_HOOK", violations=problems)


def hook_to_proto(hook) -> hooks_pb2.Hook:
    """Any hook (built-in or external) as the API shows it."""
    message = hooks_pb2.Hook(
        name=hook.name, stage=hooks_pb2.Hook.STAGE_PRE if hook.stage == PRE
        else hooks_pb2.Hook.STAGE_POST, order=hook.order,
        builtin=getattr(hook, "builtin", False), address=hook.address,
        failure_mode=hooks_pb2.Hook.FAILURE_MODE_FAIL_CLOSED
        if hook.failure_mode == FAIL_CLOSED else hooks_pb2.Hook.FAILURE_MODE_FAIL_OPEN,
        skippable=hook.skippable, description=hook.description)
    if hook.timeout:
        message.timeout.CopyFrom(seconds_to_duration(hook.timeout))
    for field in ("create_time", "update_time"):
        value = getattr(hook, field, None)
        if value is not None:
            getattr(message, field).CopyFrom(datetime_to_timestamp(value))
    return message


def _call(spec: HookSpec, call: HookInput) -> hook_pb2.Call:
    return hook_pb2.Call(
        hook=spec.name, operation=call.operation, params=dict_to_struct(call.params),
        execution_id=call.execution_id, session_id=call.session_id, actor=call.actor,
        roles=list(call.roles), run_id=call.run_id, step_id=call.step_id,
        dry_run=call.dry_run, context=dict_to_struct(call.context), policy=call.policy)


class ExternalHook:
    """Calls one registered hook process with the hook's timeout as the deadline."""

    builtin = False

    def __init__(self, spec: HookSpec, channel: grpc.aio.Channel,
                 credentials: ServiceCredentials | None) -> None:
        self.spec = spec
        self.name, self.stage, self.order = spec.name, spec.stage, spec.order
        self.skippable, self.description = spec.skippable, spec.description
        self.address, self.failure_mode = spec.address, spec.failure_mode
        self.timeout: float | None = spec.timeout
        self.create_time, self.update_time = spec.create_time, spec.update_time
        self._stub = hook_pb2_grpc.HookStub(channel)
        self._credentials = credentials

    def _metadata(self, call: HookInput) -> tuple[tuple[str, str], ...]:
        if self._credentials is None:
            return ()
        return self._credentials.on_behalf_of(Identity(call.actor, call.roles))

    async def pre(self, call: HookInput) -> None:
        left = call.remaining()
        timeout = self.timeout if left is None else min(self.timeout or left, left)
        reply = await self._stub.BeforeDispatch(
            hook_pb2.BeforeDispatchRequest(call=_call(self.spec, call)),
            timeout=max(timeout, 0.001) if timeout is not None else None,
            metadata=self._metadata(call))
        if reply.decision not in _DECISIONS:
            # An answer the hook cannot have meant is its failure, not an approval.
            raise Internal(f"answered with decision {reply.decision}, which is neither "
                           "ALLOW nor REJECT")
        if reply.decision == _REJECT.DECISION_REJECT:
            reason = reply.reason or f"rejected by hook {self.name}"
            kind = FailedPrecondition if reply.rejection == \
                _REJECT.REJECTION_FAILED_PRECONDITION else PermissionDenied
            raise HookRejected(kind(reason, reason="HOOK_REJECTED",
                                    metadata={"hook": self.name, "operation": call.operation}))
        if reply.HasField("context"):
            call.context.update(struct_to_dict(reply.context))

    async def post(self, call: HookInput, outcome: HookOutcome) -> None:
        request = hook_pb2.AfterDispatchRequest(call=_call(self.spec, call),
                                                duration=seconds_to_duration(outcome.seconds))
        if outcome.error is not None:
            request.error.CopyFrom(outcome.error.to_status())
        else:
            request.result.CopyFrom(dict_to_struct(outcome.result or {}))
        await self._stub.AfterDispatch(request, timeout=self.timeout,
                                       metadata=self._metadata(call))
