"""OrchestratorClient: Dispatch, and the HookManager and PolicyEngine beside it."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import grpc

from baton.orchestrator.v1 import (
    hooks_pb2,
    hooks_pb2_grpc,
    orchestrator_pb2,
    orchestrator_pb2_grpc,
    policies_pb2,
    policies_pb2_grpc,
)
from baton_core import constants, dict_to_struct, duration_to_seconds, seconds_to_duration

from ._channel import ClientLifecycle

# Time granted beyond a dispatch's own timeout, so the orchestrator's
# DEADLINE_EXCEEDED (with its details) reaches us before our own deadline cuts in.
DISPATCH_DEADLINE_SLACK = 1.0

_IDEMPOTENT = [
    (constants.HOOK_MANAGER_SERVICE, "ListHooks"), (constants.HOOK_MANAGER_SERVICE, "GetHook"),
    (constants.POLICY_ENGINE_SERVICE, "ListPolicies"),
    (constants.POLICY_ENGINE_SERVICE, "GetPolicy"),
]


class OrchestratorClient(ClientLifecycle):
    """Client of the orchestrator process (Orchestrator, HookManager, PolicyEngine).

    Every method raises the BatonError subclass matching the returned status.

    Takes the arguments of every client (see ClientLifecycle); address: the orchestrator.
    """

    idempotent = _IDEMPOTENT

    def _bind(self, channel: grpc.aio.Channel) -> None:
        self._orchestrator = orchestrator_pb2_grpc.OrchestratorStub(channel)
        self._hooks = hooks_pb2_grpc.HookManagerStub(channel)
        self._policies = policies_pb2_grpc.PolicyEngineStub(channel)


    async def dispatch(self, operation: str, params: Mapping[str, Any] | None = None, *,
                       session_id: str = "", timeout: float | None = None,
                       dry_run: bool = False, idempotency_key: str | None = None,
                       skip_hooks: Sequence[str] = ()) -> orchestrator_pb2.DispatchResponse:
        """Runs one operation through policy, hooks and a worker.

        Args:
            operation: Dotted method name, e.g. `casefile.create`.
            params: The method's params.
            session_id: Session to record the execution in.
            timeout: Execution timeout in seconds, sent as a directive (never
                beyond the policy's maximum); the call's own deadline is
                DISPATCH_DEADLINE_SLACK longer. None or 0: no timeout of the
                caller's, so the policy's or the method's default applies, which
                the orchestrator enforces; the call then has no deadline of its own.
            dry_run: Validate and run pre-hooks only.
            idempotency_key: A repeated key returns the first result.
            skip_hooks: Skippable hooks not to run.

        Returns:
            The result (a Struct) and the execution metadata.

        Raises:
            ValueError: `timeout` is negative or not a finite number; nothing is sent.
        """
        directives = orchestrator_pb2.Directives(
            skip_hooks=list(skip_hooks), dry_run=dry_run, idempotency_key=idempotency_key or "")
        if timeout is not None and not (math.isfinite(timeout) and timeout >= 0):
            raise ValueError(f"timeout must be a number of seconds, 0 or more (0 or None: "
                             f"the default), not {timeout!r}")
        if timeout:
            directives.timeout.CopyFrom(seconds_to_duration(timeout))
        # The orchestrator reads a zero timeout as none: the policy's or the method's
        # default applies, which it enforces. The call then has no deadline of ours (nor
        # the connection's default one, bounded=False) that could cut that default short.
        asked = duration_to_seconds(directives.timeout)
        deadline = asked + DISPATCH_DEADLINE_SLACK if asked else None
        request = orchestrator_pb2.DispatchRequest(
            operation=operation, params=dict_to_struct(dict(params or {})),
            session_id=session_id, directives=directives)
        return await self._conn.unary(self._orchestrator.Dispatch, request, deadline,
                                      bounded=False)

    async def list_hooks(self, *, stage: hooks_pb2.Hook.Stage = hooks_pb2.Hook.STAGE_UNSPECIFIED,
                         timeout: float | None = None) -> list[hooks_pb2.Hook]:
        """Every hook (of `stage`, when given) in run order."""
        response = await self._conn.unary(
            self._hooks.ListHooks, hooks_pb2.ListHooksRequest(stage=stage), timeout)
        return list(response.hooks)

    async def get_hook(self, name: str, *, timeout: float | None = None) -> hooks_pb2.Hook:
        response = await self._conn.unary(
            self._hooks.GetHook, hooks_pb2.GetHookRequest(name=name), timeout)
        return response.hook

    async def list_policies(self, *, timeout: float | None = None) -> list[policies_pb2.Policy]:
        """Every policy, most specific pattern first."""
        response = await self._conn.unary(
            self._policies.ListPolicies, policies_pb2.ListPoliciesRequest(), timeout)
        return list(response.policies)

    async def get_policy(self, name: str, *,
                         timeout: float | None = None) -> policies_pb2.Policy:
        response = await self._conn.unary(
            self._policies.GetPolicy, policies_pb2.GetPolicyRequest(name=name), timeout)
        return response.policy
