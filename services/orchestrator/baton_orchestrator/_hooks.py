"""Hooks that run around every execution, and the chain that runs them in order.

Pre-hooks run in order before execution; one may reject the call (its
rejection reaches the caller) or add values to `HookInput.context`. A failing
pre-hook (error, timeout) rejects the call when it is fail_closed and is
logged and passed over when it is fail_open. Post-hooks see the outcome and
can change nothing; their failures are logged.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc

from baton_core import BatonError, Unavailable

log = logging.getLogger("baton.orchestrator.hooks")

PRE, POST = "pre", "post"
FAIL_OPEN, FAIL_CLOSED = "fail_open", "fail_closed"


@dataclass
class HookInput:
    """What a hook sees of one execution."""

    operation: str
    params: dict[str, Any]
    execution_id: str
    session_id: str = ""
    actor: str = ""
    roles: tuple[str, ...] = ()
    via: str = ""
    run_id: str = ""
    step_id: str = ""
    dry_run: bool = False
    policy: str = ""
    context: dict[str, Any] = field(default_factory=dict)
    # Set once the worker is called: a refusal before that executed nothing.
    executed: bool = False


@dataclass
class HookOutcome:
    """What a post-hook sees of the result."""

    result: dict[str, Any] | None
    error: BatonError | None
    seconds: float
    attempts: int = 0


class HookRejected(Exception):
    """A pre-hook's deliberate refusal; `error` is what the caller gets."""

    def __init__(self, error: BatonError) -> None:
        super().__init__(error.message)
        self.error = error


class Hook(Protocol):
    name: str
    stage: str
    order: int
    skippable: bool
    description: str
    builtin: bool
    address: str
    failure_mode: str
    timeout: float | None

    async def pre(self, call: HookInput) -> None: ...

    async def post(self, call: HookInput, outcome: HookOutcome) -> None: ...

    # Optional: `post_now(call, outcome) -> Awaitable | None`, the same post-hook
    # run inline; HookChain prefers it to `post`.


def describe_failure(exc: BaseException) -> str:
    """One line for why a hook call failed (an RPC error's status, not its repr)."""
    if isinstance(exc, BatonError):
        return exc.message
    if isinstance(exc, grpc.aio.AioRpcError):
        details = (exc.details() or "").strip().splitlines()
        return f"{exc.code().name}: {details[0]}" if details else exc.code().name
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


class HookChain:
    """The hooks one execution runs, in run order."""

    def __init__(self, hooks: Sequence[Hook]) -> None:
        self.hooks = list(hooks)
        self.pre_hooks = [h for h in self.hooks if h.stage == PRE]
        self.post_hooks = [h for h in self.hooks if h.stage == POST]
        self.names = [h.name for h in self.hooks]
        # A hook with `post_now` (the built-ins) runs its post-hook inline, with
        # no coroutine per call; it returns an awaitable only when it has I/O to do.
        self._post = [(h, getattr(h, "post_now", None)) for h in self.post_hooks]

    async def pre(self, call: HookInput) -> None:
        for hook in self.pre_hooks:
            try:
                await hook.pre(call)
            except HookRejected as rejected:
                raise rejected.error from None
            except Exception as exc:  # noqa: BLE001 - the failure mode decides
                detail = describe_failure(exc)
                if hook.failure_mode == FAIL_CLOSED:
                    raise Unavailable(f"pre-hook {hook.name} failed ({detail}) and fails closed",
                                      reason="HOOK_FAILED",
                                      metadata={"hook": hook.name}) from None
                log.warning("pre-hook %s failed for %s (%s); fail_open, going on", hook.name,
                            call.operation, detail)

    async def post(self, call: HookInput, outcome: HookOutcome) -> None:
        for hook, now in self._post:
            try:
                if now is None:
                    await hook.post(call, outcome)
                else:
                    pending = now(call, outcome)
                    if pending is not None:
                        await pending
            except Exception:  # noqa: BLE001 - a post-hook never undoes an execution
                log.exception("post-hook %s failed for %s", hook.name, call.operation)


class HookRegistry:
    """Every known hook, in run order: pre-hooks, then post-hooks, each by order."""

    def __init__(self, hooks: Iterable[Hook]) -> None:
        self._hooks: list[Hook] = []
        self._chains: dict[tuple, HookChain] = {}
        self.replace(hooks)

    def replace(self, hooks: Iterable[Hook]) -> None:
        self._hooks = sorted(hooks, key=lambda h: (h.stage != PRE, h.order, h.name))
        self._chains = {}

    def all(self) -> list[Hook]:
        return list(self._hooks)

    def names(self) -> set[str]:
        return {h.name for h in self._hooks}

    def get(self, name: str) -> Hook | None:
        return next((h for h in self._hooks if h.name == name), None)

    def chain(self, names: Sequence[str], skip: Sequence[str] = (),
              skippable: Sequence[str] = ()) -> HookChain:
        """The hooks named, less those `skip` names that both the policy (`skippable`)
        and the hook itself allow to skip."""
        key = (tuple(names), tuple(skip), tuple(skippable))
        chain = self._chains.get(key)
        if chain is None:
            wanted, skipped = set(names), set(skip) & set(skippable)
            chain = HookChain([h for h in self._hooks if h.name in wanted
                               and not (h.skippable and h.name in skipped)])
            if len(self._chains) > 1000:
                self._chains = {}
            self._chains[key] = chain
        return chain
