"""gRPC servicers of the orchestrator process: protobuf in, dataclasses inside."""

from __future__ import annotations

import grpc

from baton.orchestrator.v1 import (
    hooks_pb2,
    hooks_pb2_grpc,
    orchestrator_pb2,
    orchestrator_pb2_grpc,
    policies_pb2,
    policies_pb2_grpc,
)
from baton.registry.v1 import registry_pb2
from baton_core import (
    NotFound,
    dict_to_struct,
    duration_to_seconds,
    seconds_to_duration,
    struct_to_dict,
)

from ._dispatch import DispatchCall, Dispatcher, DispatchResult
from ._hooks import PRE, HookRegistry
from ._policies import Policy, PolicyBook


def actor_of(context: grpc.aio.ServicerContext) -> str:
    """The authenticated caller, as set by the auth interceptor (anonymous without auth)."""
    for key, value in context.invocation_metadata() or ():
        if key == "x-baton-actor":
            return value
    return "anonymous"


def dispatch_call(request: orchestrator_pb2.DispatchRequest,
                  context: grpc.aio.ServicerContext) -> DispatchCall:
    directives = request.directives
    return DispatchCall(
        operation=request.operation,
        params=struct_to_dict(request.params),
        session_id=request.session_id,
        skip_hooks=tuple(directives.skip_hooks),
        timeout=duration_to_seconds(directives.timeout) or None,
        dry_run=directives.dry_run,
        idempotency_key=directives.idempotency_key,
        actor=actor_of(context),
        caller_remaining=context.time_remaining(),
    )


def dispatch_response(out: DispatchResult) -> orchestrator_pb2.DispatchResponse:
    return orchestrator_pb2.DispatchResponse(
        result=dict_to_struct(out.result),
        metadata=orchestrator_pb2.DispatchMetadata(
            execution_id=out.execution_id,
            total_duration=seconds_to_duration(out.total_seconds),
            worker_duration=seconds_to_duration(out.worker_seconds),
            attempts=out.attempts, worker_address=out.worker_address,
            worker_id=out.worker_id, method_version=out.method_version,
            hooks_run=out.hooks_run, policy=out.policy, dry_run=out.dry_run))


class OrchestratorServicer(orchestrator_pb2_grpc.OrchestratorServicer):
    def __init__(self, dispatcher: Dispatcher) -> None:
        self._dispatcher = dispatcher

    async def Dispatch(self, request, context):
        return dispatch_response(await self._dispatcher.dispatch(dispatch_call(request, context)))


def hook_proto(hook) -> hooks_pb2.Hook:
    return hooks_pb2.Hook(
        name=hook.name, stage=hooks_pb2.Hook.STAGE_PRE if hook.stage == PRE
        else hooks_pb2.Hook.STAGE_POST, order=hook.order, builtin=True,
        failure_mode=hooks_pb2.Hook.FAILURE_MODE_FAIL_OPEN, skippable=hook.skippable,
        description=hook.description)


class HookManagerServicer(hooks_pb2_grpc.HookManagerServicer):
    def __init__(self, hooks: HookRegistry) -> None:
        self._hooks = hooks

    async def ListHooks(self, request, context):
        hooks = [hook_proto(h) for h in self._hooks.all()]
        if request.stage:
            hooks = [h for h in hooks if h.stage == request.stage]
        return hooks_pb2.ListHooksResponse(hooks=hooks)

    async def GetHook(self, request, context):
        hook = self._hooks.get(request.name)
        if hook is None:
            raise NotFound(f"no hook named {request.name!r}", metadata={"hook": request.name})
        return hooks_pb2.GetHookResponse(hook=hook_proto(hook))


def policy_proto(policy: Policy) -> policies_pb2.Policy:
    message = policies_pb2.Policy(
        name=policy.name, pattern=policy.pattern, hooks=list(policy.hooks),
        default_timeout=seconds_to_duration(policy.default_timeout),
        max_timeout=seconds_to_duration(policy.max_timeout),
        required_roles=list(policy.required_roles), description=policy.description)
    if policy.retry is not None:
        message.retry_policy.CopyFrom(registry_pb2.RetryPolicy(
            max_attempts=policy.retry.max_attempts,
            initial_delay=seconds_to_duration(policy.retry.initial_delay),
            max_delay=seconds_to_duration(policy.retry.max_delay),
            multiplier=policy.retry.multiplier,
            retryable_codes=sorted(c.name for c in policy.retry.retryable)))
    return message


class PolicyEngineServicer(policies_pb2_grpc.PolicyEngineServicer):
    def __init__(self, policies: PolicyBook) -> None:
        self._policies = policies

    async def ListPolicies(self, request, context):
        return policies_pb2.ListPoliciesResponse(
            policies=[policy_proto(p) for p in self._policies.all()])

    async def GetPolicy(self, request, context):
        policy = self._policies.get(request.name)
        if policy is None:
            raise NotFound(f"no policy named {request.name!r}", metadata={"policy": request.name})
        return policies_pb2.GetPolicyResponse(policy=policy_proto(policy))
