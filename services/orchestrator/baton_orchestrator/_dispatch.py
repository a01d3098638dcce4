"""The one execution path: Dispatch and every workflow step go through here."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from dataclasses import asdict, dataclass, field, replace
from typing import Any
from urllib.parse import quote

import grpc

from baton_core import (
    BatonError,
    Cancelled,
    DeadlineExceeded,
    Identity,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unavailable,
    new_id,
)

from ._admission import Admission
from ._hooks import HookChain, HookInput, HookOutcome, HookRegistry
from ._idempotency import Idempotency, fingerprint
from ._invoker import CallContext, InvokeOutcome, Invoker
from ._method_cache import CachedMethod, MethodCache
from ._policies import FALLBACK_TIMEOUT, Policy, PolicyBook
from ._retry import Retry
from ._sessions import SessionsGateway


@dataclass(frozen=True)
class DispatchCall:
    """One execution request, from Dispatch or from a workflow step.

    `roles` None means a trusted internal caller (a workflow step, whose run
    was authorized when it started): the policy's required roles are not
    checked. `replay` asks for the idempotency_key to dedupe whole Dispatch
    calls (the Dispatch RPC); without it the key only goes to the worker.
    """

    operation: str
    params: dict[str, Any]
    session_id: str = ""
    skip_hooks: tuple[str, ...] = ()
    timeout: float | None = None
    dry_run: bool = False
    idempotency_key: str = ""
    actor: str = ""
    caller_remaining: float | None = None
    run_id: str = ""
    step_id: str = ""
    retry: Retry | None = None
    first_attempt: int = 1
    roles: tuple[str, ...] | None = None
    via: str = ""
    replay: bool = False
    # `params` as the caller sent them (a Struct), when there is such a message:
    # the worker gets it as it is instead of a copy converted back from the dict.
    params_struct: Any = field(default=None, compare=False, repr=False)


@dataclass
class DispatchResult:
    result: dict[str, Any]
    execution_id: str
    policy: str
    hooks_run: list[str]
    method_version: str = ""
    attempts: int = 0
    worker_id: str = ""
    worker_address: str = ""
    worker_seconds: float = 0.0
    total_seconds: float = 0.0
    dry_run: bool = False
    replayed: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    # The worker's result as it came (a Struct), for the Dispatch response; not stored.
    result_struct: Any = field(default=None, compare=False, repr=False)

    def stored(self) -> dict[str, Any]:
        """What an idempotency key keeps of this result (JSON-ready)."""
        return {k: v for k, v in asdict(replace(self, result_struct=None)).items()
                if k != "result_struct"}


def _abandoned(call: DispatchCall, elapsed: float) -> BatonError:
    """What a post-hook is told of an execution cancelled from outside."""
    if call.caller_remaining is not None and elapsed >= call.caller_remaining - 0.005:
        return DeadlineExceeded(f"the caller's deadline passed after {elapsed:.3f}s",
                                reason="CALLER_DEADLINE_EXCEEDED")
    return Cancelled("the execution was cancelled before it ended", reason="CANCELLED")


def worker_key(call: DispatchCall, execution_id: str) -> str:
    """The idempotency key the worker gets: unique to one logical call platform-wide.

    A Dispatch caller's key is theirs alone (replays are per actor), so the worker
    gets it qualified by the actor (`<actor>/<key>`, the actor %-encoded): the
    same key from two callers is two calls. A step's key (`run_id:step_id`) and an
    execution id are unique already.
    """
    if call.replay and call.idempotency_key:
        return f"{quote(call.actor, safe='')}/{call.idempotency_key}"
    return call.idempotency_key or execution_id


@dataclass(frozen=True)
class Guards:
    """The Redis-backed parts of the path; each is consulted only when needed."""

    admission: Admission | None = None
    idempotency: Idempotency | None = None
    idempotency_window: float = 24 * 3600.0


class Dispatcher:
    """Runs one operation: policy, context, hooks, validation, worker call."""

    def __init__(self, cache: MethodCache, invoker: Invoker, policies: PolicyBook,
                 hooks: HookRegistry, sessions: SessionsGateway,
                 guards: Guards | None = None) -> None:
        self._cache = cache
        self._invoker = invoker
        self._policies = policies
        self._hooks = hooks
        self._sessions = sessions
        self._guards = guards or Guards()

    async def dispatch(self, call: DispatchCall) -> DispatchResult:
        started = time.perf_counter()
        policy = self._policies.match(call.operation)
        hooks = self._hooks.chain(policy.hooks, call.skip_hooks, policy.skippable_hooks)
        hook_input = HookInput(
            operation=call.operation, params=call.params, execution_id=new_id("ex_"),
            session_id=call.session_id, actor=call.actor, roles=call.roles or (),
            via=call.via, run_id=call.run_id, step_id=call.step_id, dry_run=call.dry_run,
            policy=policy.name)
        try:
            out = await self._execute(call, policy, hooks, hook_input, started)
        except BatonError as err:
            # Refusals count as much as failures: audit and metrics see both.
            if not call.dry_run:
                await hooks.post(hook_input, HookOutcome(None, err,
                                                         time.perf_counter() - started))
            raise
        except asyncio.CancelledError:
            # The caller went away or its deadline passed, or the run was cancelled:
            # the post-hooks (audit, metrics, the session's history) still hear of it.
            if not call.dry_run:
                elapsed = time.perf_counter() - started
                await asyncio.shield(hooks.post(hook_input, HookOutcome(
                    None, _abandoned(call, elapsed), elapsed)))
            raise
        if not (call.dry_run or out.replayed):
            out.total_seconds = time.perf_counter() - started
            await hooks.post(hook_input, HookOutcome(out.result, None, out.total_seconds,
                                                     out.attempts))
        out.total_seconds = time.perf_counter() - started
        return out

    async def _execute(self, call: DispatchCall, policy: Policy, hooks: HookChain,
                       hook_input: HookInput, started: float) -> DispatchResult:
        self._authorize(call, policy)
        method = await self._method(call.operation)
        timeout = self.timeout(call, policy, method)
        deadline = time.monotonic() + timeout
        hook_input.deadline = deadline
        self._validate(call, method)
        if call.session_id:
            await self._sessions.require_active(call.session_id, self._left(deadline),
                                                self._identity(call))
        replay_key = call.idempotency_key if call.replay and not call.dry_run else ""
        if replay_key:
            stored = await self._claim(call, replay_key, timeout)
            if stored is not None:
                return stored
        # The claim above raised unless there is an idempotency store.
        idempotency = self._guards.idempotency if replay_key else None
        try:
            out = await self._run(call, policy, method, hooks, hook_input, deadline, timeout)
        except BaseException:
            if idempotency is not None:
                await idempotency.release(call.actor, replay_key)
            raise
        if idempotency is not None:
            out.total_seconds = time.perf_counter() - started
            await idempotency.complete(
                call.actor, replay_key, fingerprint(call.operation, call.params), out.stored(),
                policy.idempotency_window or self._guards.idempotency_window)
        return out

    async def _run(self, call: DispatchCall, policy: Policy, method: CachedMethod,
                   hooks: HookChain, hook_input: HookInput, deadline: float,
                   timeout: float) -> DispatchResult:
        if hooks.pre_hooks:
            await hooks.pre(hook_input)
        # A dry run runs the pre-hooks only.
        ran = [h.name for h in hooks.pre_hooks] if call.dry_run else hooks.names
        out = DispatchResult(result={}, execution_id=hook_input.execution_id,
                             policy=policy.name, hooks_run=ran,
                             method_version=method.proto.version, dry_run=call.dry_run)
        if call.dry_run:
            return out
        ctx = CallContext(session_id=call.session_id, run_id=call.run_id,
                          step_id=call.step_id, actor=call.actor, roles=call.roles or (),
                          idempotency_key=worker_key(call, hook_input.execution_id),
                          hook_context=hook_input.context)
        admission = self._guards.admission
        if admission is None or not policy.admits:
            hook_input.executed = True
            outcome = await self._invoke(call, policy, method, ctx, deadline)
        else:
            async with admission.admit(policy, call.operation, call.actor,
                                       hook_input.execution_id, timeout):
                hook_input.executed = True
                outcome = await self._invoke(call, policy, method, ctx, deadline)
        out.result, out.attempts = outcome.result, outcome.attempts
        out.result_struct = outcome.result_struct
        out.worker_id, out.worker_address = outcome.worker_id, outcome.worker_address
        out.worker_seconds = outcome.worker_seconds
        return out

    def _invoke(self, call: DispatchCall, policy: Policy, method: CachedMethod,
                ctx: CallContext, deadline: float) -> Awaitable[InvokeOutcome]:
        return self._invoker.invoke(method, call.params, ctx, deadline,
                                    call.retry or policy.retry, call.first_attempt, policy,
                                    params_struct=call.params_struct)

    async def _claim(self, call: DispatchCall, key: str, timeout: float) -> DispatchResult | None:
        if self._guards.idempotency is None:
            raise Unavailable("idempotency keys need Redis, which is not configured",
                              reason="IDEMPOTENCY_UNAVAILABLE")
        stored = await self._guards.idempotency.claim(
            call.actor, key, fingerprint(call.operation, call.params), timeout + 5.0)
        if stored is None:
            return None
        result = DispatchResult(**stored)
        result.replayed = True
        return result

    @staticmethod
    def _identity(call: DispatchCall) -> Identity:
        return Identity(call.actor, call.roles or (), call.via)

    @staticmethod
    def _authorize(call: DispatchCall, policy: Policy) -> None:
        if call.roles is not None and not policy.allows(call.roles):
            raise PermissionDenied(
                f"{call.operation} needs one of the roles {', '.join(policy.required_roles)} "
                f"(policy {policy.name})", reason="POLICY_ROLE_REQUIRED",
                metadata={"operation": call.operation, "policy": policy.name})

    async def _method(self, operation: str) -> CachedMethod:
        if not operation:
            raise InvalidArgument("operation is required",
                                  violations=[("operation", "must name a registered method")])
        try:
            method = await self._cache.get(operation)
        except grpc.aio.AioRpcError as exc:
            raise Unavailable(f"method registry is unreachable: {exc.code().name}",
                              reason="REGISTRY_UNAVAILABLE") from exc
        if method is None:
            raise NotFound(f"no method named {operation!r} is registered",
                           reason="METHOD_NOT_FOUND", metadata={"operation": operation})
        return method

    @staticmethod
    def timeout(call: DispatchCall, policy: Policy, method: CachedMethod | None) -> float:
        """The caller's timeout, else the policy's default, else the method's; never
        beyond the policy's maximum nor the caller's own deadline."""
        if call.timeout is not None and call.timeout < 0:
            raise InvalidArgument("timeout must not be negative",
                                  violations=[("directives.timeout", "must not be negative")])
        wanted = (call.timeout or policy.default_timeout
                  or (method.timeout if method else None) or FALLBACK_TIMEOUT)
        timeout = min(wanted, policy.max_timeout)
        if call.caller_remaining is not None:
            timeout = min(timeout, call.caller_remaining)
        return timeout

    @staticmethod
    def _validate(call: DispatchCall, method: CachedMethod) -> None:
        violations = method.validator.violations(call.params)
        if violations:
            raise InvalidArgument(
                f"params do not match the input schema of {method.name}: "
                + "; ".join(f"{f}: {d}" for f, d in violations),
                reason="INVALID_PARAMS", violations=violations,
                metadata={"operation": method.name})

    @staticmethod
    def _left(deadline: float) -> float:
        return max(deadline - time.monotonic(), 0.001)

