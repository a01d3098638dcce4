"""The one execution path: Dispatch and every workflow step go through here."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import grpc

from baton_core import BatonError, InvalidArgument, NotFound, Unavailable, new_id

from ._hooks import HookInput, HookOutcome, HookRegistry
from ._invoker import CallContext, Invoker
from ._method_cache import CachedMethod, MethodCache
from ._policies import Policy, PolicyBook
from ._retry import Retry
from ._sessions import SessionsGateway


@dataclass(frozen=True)
class DispatchCall:
    """One execution request, from Dispatch or from a workflow step."""

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
    extra: dict[str, Any] = field(default_factory=dict)


class Dispatcher:
    """Runs one operation: policy, context, hooks, validation, worker call."""

    def __init__(self, cache: MethodCache, invoker: Invoker, policies: PolicyBook,
                 hooks: HookRegistry, sessions: SessionsGateway) -> None:
        self._cache = cache
        self._invoker = invoker
        self._policies = policies
        self._hooks = hooks
        self._sessions = sessions

    async def dispatch(self, call: DispatchCall) -> DispatchResult:
        started = time.perf_counter()
        policy = self._policies.match(call.operation)
        method = await self._method(call.operation)
        deadline = time.monotonic() + self._timeout(call, policy, method)
        self._validate(call, method)
        if call.session_id:
            await self._sessions.require_active(call.session_id, self._left(deadline))
        hooks = self._hooks.chain(policy.hooks, call.skip_hooks)
        execution_id = new_id("ex_")
        hook_input = HookInput(
            operation=call.operation, params=call.params, execution_id=execution_id,
            session_id=call.session_id, actor=call.actor, run_id=call.run_id,
            step_id=call.step_id, dry_run=call.dry_run)
        await hooks.pre(hook_input)
        out = DispatchResult(result={}, execution_id=execution_id, policy=policy.name,
                             hooks_run=hooks.names, method_version=method.proto.version,
                             dry_run=call.dry_run)
        if not call.dry_run:
            ctx = CallContext(session_id=call.session_id, run_id=call.run_id,
                              step_id=call.step_id, actor=call.actor,
                              idempotency_key=call.idempotency_key or execution_id)
            try:
                outcome = await self._invoker.invoke(
                    method, call.params, ctx, deadline, call.retry or policy.retry,
                    call.first_attempt)
            except BatonError as err:
                await hooks.post(hook_input, HookOutcome(None, err, time.perf_counter() - started))
                raise
            out.result, out.attempts = outcome.result, outcome.attempts
            out.worker_id, out.worker_address = outcome.worker_id, outcome.worker_address
            out.worker_seconds = outcome.worker_seconds
        out.total_seconds = time.perf_counter() - started
        await hooks.post(hook_input, HookOutcome(out.result, None, out.total_seconds))
        out.total_seconds = time.perf_counter() - started
        return out

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
    def _timeout(call: DispatchCall, policy: Policy, method: CachedMethod) -> float:
        if call.timeout is not None and call.timeout < 0:
            raise InvalidArgument("timeout must not be negative",
                                  violations=[("directives.timeout", "must be positive")])
        wanted = call.timeout or method.timeout or policy.default_timeout
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
