"""Calling one step's method: its DispatchCall (with the run's directives) and the
retry loop around it. The run's driver (_executor) decides when a step starts and
receives its outcome as a ("done", step_id, result, error) message in its inbox.

A step's retry policy bounds its calls, resumes included: an attempt in flight
when the run's owner stopped counts (the call may have reached the worker).
A stop never leaves a step without its retry: one interrupted on the last
attempt the policy allows is called once more, but one interrupted on that
extra call is not called again (`interrupted_last`), so a step is called at
most max_attempts + 1 times. Without that bound, a step whose call brings the
orchestrator down would be resumed forever.

A graceful stop (`draining`) lets a call in flight finish, but makes no retry:
the failed attempt is recorded and the next is left to the run's next owner.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from baton_core import BatonError

from .._dispatch import DispatchCall, Dispatcher
from .._method_cache import MethodCache
from .._policies import Policy, PolicyBook
from .._retry import Retry
from .._sessions import SessionsGateway
from ._definition import StepDef
from ._records import Recorder, RunState, StepState
from ._states import RUNNING
from ._writer import Writer

NO_RETRY = Retry(strategy="none", max_attempts=1)
# A call's deadline runs this much past the run's, so the run timeout reports first.
_RUN_DEADLINE_SLACK = 0.05

log = logging.getLogger("baton.workflows.attempts")


@dataclass
class ExecutorContext:
    """What every run executor of one replica shares."""

    writer: Writer
    dispatcher: Dispatcher
    cache: MethodCache
    policies: PolicyBook
    sessions: SessionsGateway | None
    replica: str
    default_concurrency: int
    # Set when the replica stops gracefully: no call starts from then on.
    draining: asyncio.Event = field(default_factory=asyncio.Event)


def step_retry(defn: StepDef, policy: Policy, method_retry: Retry | None) -> Retry | None:
    """A step's retry policy: its own, else its policy's, else its method's."""
    return defn.retry_policy() or policy.retry or method_retry


def error_dict(err: BaseException) -> dict[str, Any]:
    if isinstance(err, BatonError):
        return {"code": err.code.name, "message": err.message, "reason": err.reason}
    return {"code": "INTERNAL", "message": f"{type(err).__name__}: {err}", "reason": "INTERNAL"}


class StepAttempts:
    """Calls one step's method until it succeeds or its retry policy gives up."""

    def __init__(self, ctx: ExecutorContext, state: RunState, rec: Recorder,
                 post: Callable[[tuple], None]) -> None:
        self.ctx = ctx
        self.state = state
        self.rec = rec
        self._post = post

    async def run(self, step: StepState, params: dict[str, Any]) -> None:
        defn, state = self.state.definition.step(step.step_id), self.state
        policy = self.ctx.policies.match(defn.method)
        method = self.ctx.cache.peek(defn.method)
        retry = step_retry(defn, policy, method.retry if method else None) or NO_RETRY
        directives = state.directives
        step_timeout = defn.timeout
        if directives.timeout:
            # Bound what the step would get (its own, else the policy's or method's).
            step_timeout = directives.step_timeout(self.ctx.dispatcher.timeout(
                DispatchCall(operation=defn.method, params={}, timeout=defn.timeout),
                policy, method))
        attempt = step.attempts
        while True:
            call = DispatchCall(
                operation=defn.method, params=params, session_id=state.session_id,
                timeout=step_timeout, caller_remaining=self._run_remaining(),
                actor=state.actor,
                idempotency_key=f"{state.run_id}:{step.step_id}", run_id=state.run_id,
                step_id=step.step_id, retry=NO_RETRY, first_attempt=attempt,
                skip_hooks=directives.skip_hooks, dry_run=directives.dry_run)
            try:
                out = await self.ctx.dispatcher.dispatch(call)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - every failure is the step's outcome
                code = getattr(exc, "code", None)
                tries = attempt - step.first_attempt + 1
                pause = retry.delay(tries)
                left = (state.deadline - time.time()) if state.deadline else None
                if code is None or not retry.should_retry(code, tries) or \
                        (left is not None and pause >= left):
                    self._post(("done", step.step_id, None, error_dict(exc)))
                    return
                err = error_dict(exc)
                if await self._drained_within(pause):
                    self.rec.step(step, RUNNING, f"attempt {attempt} failed with {err['code']}:"
                                  f" {err['message']}; the next is left to the run's next "
                                  "owner (the orchestrator is stopping)", error=err)
                    self._post(("parked", step.step_id))
                    return
                attempt += 1
                self.rec.step(step, RUNNING, f"attempt {attempt} after {err['code']}: "
                              f"{err['message']} (waited {pause:.3f}s)", attempts=attempt,
                              error=err)
                try:
                    await self.ctx.writer.commit(self.rec.take())
                except Exception as lost:  # noqa: BLE001 - the driver decides what it means
                    self._post(("broken", lost))
                    return
                continue
            self._post(("done", step.step_id, out.result, None))
            return

    async def _drained_within(self, pause: float) -> bool:
        """Waits `pause` before a retry; True as soon as the replica is stopping."""
        draining = self.ctx.draining
        if not draining.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(draining.wait(), pause)
        return draining.is_set()

    async def interrupted_last(self, step: StepState) -> dict[str, Any] | None:
        """The error that ends `step`, in flight when the run's previous owner stopped,
        without another call: when the interrupted attempt was already the one made
        past the last its retry policy allows (since the run started, or was last
        retried). None when a call is left, or when the policy is not known yet (its
        method's, and the registry cannot be asked): the call cannot go out without
        the method either.
        """
        defn = self.state.definition.step(step.step_id)
        policy = self.ctx.policies.match(defn.method)
        retry = step_retry(defn, policy, None)
        if retry is None:
            try:
                method = await self.ctx.cache.get(defn.method)
            except Exception as exc:  # noqa: BLE001 - the resumed call meets the same outage
                log.warning("run %s: retry policy of step %s unknown (%s); resuming it",
                            self.state.run_id, step.step_id, exc)
                return None
            retry = step_retry(defn, policy, method.retry if method else None)
            if retry is None:
                return None
        allowed = 1 if retry.strategy == "none" else max(retry.max_attempts, 1)
        # The one call past the policy's attempts that an interruption earns.
        if step.attempts - step.first_attempt + 1 <= allowed:
            return None
        since = (f", counted from attempt {step.first_attempt} when the run was retried"
                 if step.first_attempt > 1 else "")
        return {"code": "ABORTED", "reason": "LAST_ATTEMPT_INTERRUPTED", "message":
                f"the orchestrator stopped during attempt {step.attempts}, the one made "
                f"after it stopped during the last its retry policy allows (max_attempts "
                f"{allowed}{since}); the call may have reached the worker, and is not made "
                "again"}

    def _run_remaining(self) -> float | None:
        """What is left of the run's timeout: it bounds the call's timeout (the step's,
        else the policy's or the method's), never replaces it."""
        if self.state.deadline is None:
            return None
        return max(self.state.deadline - time.time(), 0.001) + _RUN_DEADLINE_SLACK
