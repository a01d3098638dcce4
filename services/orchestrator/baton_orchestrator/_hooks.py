"""Hooks that run around every execution, and the chain that runs them in order.

Pre-hooks run in order before execution, never past the execution's deadline;
one may reject the call (its rejection reaches the caller) or add values to
`HookInput.context`. A failing pre-hook (error, timeout, an answer it cannot
mean) rejects the call when it is fail_closed and is logged and passed over
when it is fail_open. Post-hooks see the outcome and can change nothing; their
failures are logged. The built-in post-hooks run before the caller is answered;
external ones (a process that may be slow or away) run in order after it, so
that none of them can delay an answer past the caller's deadline.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc

from baton_core import BatonError, DeadlineExceeded, Unavailable

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
    # time.monotonic() by which the execution must end (None: no deadline); pre-hooks
    # are called within it.
    deadline: float | None = None

    def remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()


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


Spawn = Callable[[Coroutine[Any, Any, None]], None]


class HookChain:
    """The hooks one execution runs, in run order; `spawn` runs what the caller
    need not wait for (external post-hooks), by default as a task of its own."""

    def __init__(self, hooks: Sequence[Hook], spawn: Spawn | None = None) -> None:
        self._spawn = spawn or _spawn
        self.hooks = list(hooks)
        self.pre_hooks = [h for h in self.hooks if h.stage == PRE]
        self.post_hooks = [h for h in self.hooks if h.stage == POST]
        self.names = [h.name for h in self.hooks]
        # A hook with `post_now` (the built-ins) runs its post-hook inline, with
        # no coroutine per call; it returns an awaitable only when it has I/O to do.
        self._post = [(h, getattr(h, "post_now", None)) for h in self.post_hooks]

    async def pre(self, call: HookInput) -> None:
        for hook in self.pre_hooks:
            left = call.remaining()
            if left is not None and left <= 0:
                raise _too_late(call, hook, "before")
            try:
                await hook.pre(call)
            except HookRejected as rejected:
                raise rejected.error from None
            except Exception as exc:  # noqa: BLE001 - the failure mode decides
                left = call.remaining()
                if left is not None and left <= 0:
                    # Cut short by the execution's deadline, not by its own failure.
                    raise _too_late(call, hook, "during") from None
                detail = describe_failure(exc)
                if hook.failure_mode == FAIL_CLOSED:
                    raise Unavailable(f"pre-hook {hook.name} failed ({detail}) and fails closed",
                                      reason="HOOK_FAILED",
                                      metadata={"hook": hook.name}) from None
                log.warning("pre-hook %s failed for %s (%s); fail_open, going on", hook.name,
                            call.operation, detail)

    async def post(self, call: HookInput, outcome: HookOutcome) -> None:
        later = []
        for hook, now in self._post:
            if now is None:
                later.append(hook)
                continue
            try:
                pending = now(call, outcome)
                if pending is not None:
                    await pending
            except Exception:  # noqa: BLE001 - a post-hook never undoes an execution
                log.exception("post-hook %s failed for %s", hook.name, call.operation)
        if later:
            self._spawn(_post_in_order(later, call, outcome))


async def _post_in_order(hooks: Sequence[Hook], call: HookInput, outcome: HookOutcome) -> None:
    for hook in hooks:
        try:
            await hook.post(call, outcome)
        except Exception as exc:  # noqa: BLE001 - a post-hook never undoes an execution
            log.warning("post-hook %s failed for %s (%s)", hook.name, call.operation,
                        describe_failure(exc))


def _spawn(work: Coroutine[Any, Any, None]) -> None:
    asyncio.get_running_loop().create_task(work)


def _too_late(call: HookInput, hook: Hook, when: str) -> DeadlineExceeded:
    return DeadlineExceeded(f"the deadline of {call.operation} passed {when} pre-hook "
                            f"{hook.name}", reason="HOOK_DEADLINE_EXCEEDED",
                            metadata={"hook": hook.name, "operation": call.operation})


class HookRegistry:
    """Every known hook, in run order: pre-hooks, then post-hooks, each by order."""

    def __init__(self, hooks: Iterable[Hook]) -> None:
        self._hooks: list[Hook] = []
        self._chains: dict[tuple, HookChain] = {}
        # External post-hooks still running after their caller was answered.
        self._pending: set[asyncio.Task] = set()
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
                               and not (h.skippable and h.name in skipped)], self._spawn)
            if len(self._chains) > 1000:
                self._chains = {}
            self._chains[key] = chain
        return chain

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work, name="post-hooks")
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def drain(self, timeout: float) -> None:
        """Waits up to `timeout` for the post-hooks still running, then cancels them."""
        pending = set(self._pending)
        if not pending:
            return
        _, late = await asyncio.wait(pending, timeout=timeout)
        for task in late:
            task.cancel()
        if late:
            log.warning("stopped %d post-hook calls still running", len(late))
            await asyncio.gather(*late, return_exceptions=True)
