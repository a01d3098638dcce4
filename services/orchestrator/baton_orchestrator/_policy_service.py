"""The PolicyEngine servicer: policies CRUD and ExplainPolicy."""

from __future__ import annotations

import grpc
from google.protobuf import field_mask_pb2

from baton.orchestrator.v1 import policies_pb2, policies_pb2_grpc
from baton_core import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    current_identity,
    required,
    seconds_to_duration,
)

from ._control import ControlPlane
from ._dispatch import DispatchCall, Dispatcher
from ._external_hooks import hook_to_proto
from ._hooks import POST, PRE
from ._method_cache import MethodCache
from ._policies import DEFAULT_NAME, DEFAULT_POLICY
from ._policy_convert import (
    breaker_to_proto,
    policy_from_proto,
    policy_to_proto,
    retry_to_proto,
    update_paths,
    validate,
)
from ._retry import Retry


def _as_served(stored: policies_pb2.Policy) -> policies_pb2.Policy:
    """A policy just written, as GetPolicy will show it (defaults filled in)."""
    served = policy_to_proto(policy_from_proto(stored, source=stored.source))
    for name in ("create_time", "update_time"):
        if stored.HasField(name):
            getattr(served, name).CopyFrom(getattr(stored, name))
    return served


def _required(request, field: str) -> None:
    if not request.HasField(field):
        raise InvalidArgument(f"{field} is required", violations=[(field, "is required")])


class PolicyEngineServicer(policies_pb2_grpc.PolicyEngineServicer):
    def __init__(self, control: ControlPlane, cache: MethodCache) -> None:
        self._control = control
        self._cache = cache

    def _validate(self, message: policies_pb2.Policy) -> None:
        validate(message, self._control.known_hooks())

    async def ListPolicies(self, request, context):
        return policies_pb2.ListPoliciesResponse(
            policies=[policy_to_proto(p) for p in self._control.policies.all()])

    async def GetPolicy(self, request, context):
        policy = self._control.policies.get(required(request.name, "name"))
        if policy is None:
            raise NotFound(f"no policy named {request.name!r}", reason="POLICY_NOT_FOUND",
                           metadata={"policy": request.name})
        return policies_pb2.GetPolicyResponse(policy=policy_to_proto(policy))

    async def CreatePolicy(self, request, context):
        _required(request, "policy")
        self._validate(request.policy)
        stored = await self._control.store.create_policy(request.policy)
        await self._control.changed()
        return policies_pb2.CreatePolicyResponse(policy=_as_served(stored))

    async def UpdatePolicy(self, request, context):
        _required(request, "policy")
        # The built-in default policy becomes a stored one on its first update.
        base = policy_to_proto(DEFAULT_POLICY) if request.policy.name == DEFAULT_NAME else None
        if base is not None:
            base.etag = ""
        paths = update_paths(request.policy, list(request.update_mask.paths))

        def check(updated: policies_pb2.Policy) -> None:
            known = self._control.known_hooks()
            if "hooks" not in {p.split(".")[0] for p in paths}:
                # Hooks this update leaves alone may have been deleted since: Dispatch
                # skips those, and they must not block a change of something else.
                known |= set(updated.hooks)
            validate(updated, known)

        stored = await self._control.store.update_policy(
            request.policy, field_mask_pb2.FieldMask(paths=paths), check, base=base)
        await self._control.changed()
        return policies_pb2.UpdatePolicyResponse(policy=_as_served(stored))

    async def DeletePolicy(self, request, context):
        if required(request.name, "name") == DEFAULT_NAME and await self._control.store.get_policy(
                DEFAULT_NAME) is None:
            raise FailedPrecondition("the built-in default policy cannot be deleted",
                                     reason="POLICY_BUILTIN", metadata={"policy": DEFAULT_NAME})
        await self._control.store.delete_policy(request.name, request.etag)
        await self._control.changed()
        return policies_pb2.DeletePolicyResponse()

    async def ExplainPolicy(self, request, context):
        if not request.operation:
            raise InvalidArgument("operation is required",
                                  violations=[("operation", "is required")])
        who = current_identity()
        explicit = bool(request.actor or request.roles)
        actor = request.actor or who.subject
        roles = tuple(request.roles) if explicit else who.roles
        book, hooks = self._control.policies, self._control.hooks
        policy = book.match(request.operation)
        try:
            method = await self._cache.get(request.operation)
        except grpc.aio.AioRpcError:
            method = None
        chain = hooks.chain(policy.hooks)
        known = hooks.names()
        retry = policy.retry or (method.retry if method else Retry())
        timeout = Dispatcher.timeout(DispatchCall(request.operation, {}), policy, method)
        reply = policies_pb2.ExplainPolicyResponse(
            policy=policy_to_proto(policy),
            matching_policies=[p.name for p in book.matching(request.operation)],
            pre_hooks=[hook_to_proto(h) for h in chain.hooks if h.stage == PRE],
            post_hooks=[hook_to_proto(h) for h in chain.hooks if h.stage == POST],
            missing_hooks=[h for h in policy.hooks if h not in known],
            timeout=seconds_to_duration(timeout),
            max_timeout=seconds_to_duration(policy.max_timeout),
            retry_policy=retry_to_proto(retry), allowed=policy.allows(roles),
            method_registered=method is not None, actor=actor, roles=list(roles))
        if not reply.allowed:
            reply.denied_reason = (f"policy {policy.name} requires one of the roles "
                                   f"{', '.join(policy.required_roles)}")
        if policy.breaker is not None:
            reply.circuit_breaker.CopyFrom(breaker_to_proto(policy.breaker))
        overrides = self._control.breakers.overrides if self._control.breakers else {}
        for endpoint in sorted({e.address for e in method.proto.endpoints} if method else ()):
            explained = reply.endpoint_breakers.add(endpoint=endpoint)
            config = overrides.get(endpoint)
            explained.endpoint_override = config is not None
            config = config or policy.breaker
            if config is not None:
                explained.config.CopyFrom(breaker_to_proto(config))
        return reply
