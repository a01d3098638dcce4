"""Drives one run to its end: scheduling, cancellation, timeouts (each step's
calls and retries are in _attempts).

The owner of a run keeps its state in memory and makes every change through
the Recorder (the state machine), then commits it before acting on it: a
step is written RUNNING with its attempt number before its worker call, so a
crash leads to a retry with the same idempotency key, or to the step's failure
when that attempt was the last its retry policy allows. A completion and the
starts it makes possible share one commit.

A graceful stop drains the run (`drain`): no step starts any more, the calls in
flight finish and their outcomes are committed, and the run is left as it is
(to the next owner) unless all its steps have ended.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from baton_core import struct_to_dict, utcnow

from ._attempts import ExecutorContext, StepAttempts
from ._definition import STOP_ON_FAILURE
from ._records import Recorder, RunState, StepState
from ._references import BadReference, needs_resolving, resolve
from ._states import (
    CANCELLED,
    FAILED,
    PARTIAL,
    PENDING,
    RUNNING,
    SKIPPED,
    STEP_TERMINAL,
    STEP_UNSUCCESSFUL,
    SUCCEEDED,
)
from ._writer import LeaseLost

log = logging.getLogger("baton.workflows.executor")


class Inbox:
    """The executor's messages (completions, cancel): an asyncio.Queue's subset it
    uses, for one reader. An asyncio.Queue holds three deques of ~0.75 kB each,
    and a burst keeps hundreds of runs in memory at once."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: list[tuple] = []
        self._waiter: asyncio.Future | None = None

    def put_nowait(self, message: tuple) -> None:
        self._items.append(message)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def empty(self) -> bool:
        return not self._items

    def get_nowait(self) -> tuple:
        return self._items.pop(0)

    async def get(self) -> tuple:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.pop(0)


class RunExecutor:
    def __init__(self, state: RunState, ctx: ExecutorContext,
                 on_exit: Callable[[RunExecutor], None], *, new: bool = False) -> None:
        self.state = state
        self.ctx = ctx
        self._on_exit = on_exit
        self.rec = Recorder(state, ctx.replica)
        self._inbox = Inbox()
        self._calls = StepAttempts(ctx, state, self.rec, self._inbox.put_nowait)
        defn = state.definition
        if new:
            self.rec.changes.new_run = state.row()
            self.rec.changes.new_steps = [s.row(state.run_id) for s in state.steps.values()]
            self.rec.event("run created")
        self.created: asyncio.Future = asyncio.get_running_loop().create_future()
        plan = defn.plan()
        self._order, self._needs, self._after = plan.order, plan.needs, plan.after
        self._limit = plan.limit or ctx.default_concurrency
        self._tasks: dict[str, asyncio.Task] = {}
        self._pending: asyncio.Future | None = None
        self._stopping = False
        self._draining = False
        self.broken = False
        # When the run was first committed by this executor (monotonic clock).
        self.recorded_at: float | None = None
        # The events committed for the run while this executor drives it.
        self.log: list[dict[str, Any]] = []
        self.task: asyncio.Task | None = None

    @property
    def run_id(self) -> str:
        return self.state.run_id

    def start(self) -> None:
        self.task = asyncio.create_task(self._main(), name=f"run-{self.run_id}")

    def cancel(self) -> None:
        """Asks the run to end CANCELLED (in-flight calls are cancelled)."""
        self._inbox.put_nowait(("cancel",))

    def drain(self) -> None:
        """Asks the run to start no step any more, and to end (unfinished, for its next
        owner) once the calls in flight have ended and their outcomes are committed."""
        self._draining = True
        self._inbox.put_nowait(("drain",))

    async def abandon(self) -> None:
        """Stops driving the run without writing anything (lease lost, or shutdown)."""
        if self.task is not None and not self.task.done():
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)

    async def _main(self) -> None:
        try:
            await self._drive()
        except LeaseLost:
            log.warning("run %s: lease lost; another replica has it", self.run_id)
        except asyncio.CancelledError:
            pass
        except Exception as exc:  # noqa: BLE001 - the run must end, not hang
            if not self.created.done():  # e.g. a repeated request_id: StartRun handles it
                self.created.set_exception(exc)
                return
            log.exception("run %s: executor failed; its lease is given back", self.run_id)
            self.broken = True
        finally:
            if self._pending is not None:
                await asyncio.gather(self._pending, return_exceptions=True)
            await self._stop_tasks()
            if not self.created.done():
                self.created.cancel()
            self._on_exit(self)

    async def _commit(self) -> None:
        await self._settle()
        await self._write(self.rec.take())

    def _commit_behind(self) -> None:
        """Hands the recorded changes to the writer without waiting for them.

        Used once the run exists, for the commit that marks steps RUNNING: the
        worker calls go out while it is written. A crash before it lands leaves
        those steps as they were, so they run again under the same idempotency
        key (`run_id:step_id`), exactly as a crash during the call would.
        Queued at once: a step's retry (in _attempts) takes and queues the changes
        recorded after these, and must not commit them first.
        """
        changes = self.rec.take()
        if changes:
            self._pending = self.ctx.writer.submit(changes)

    async def _settle(self) -> None:
        """Waits for the commit handed over last (commits land in order)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            await pending

    async def _write(self, changes) -> None:
        if changes:
            await self.ctx.writer.commit(changes)
        if not self.created.done():
            self.recorded_at = time.monotonic()
            self.created.set_result(None)

    async def _drive(self) -> None:
        state = self.state
        if state.status == PENDING:
            state.start_time = state.start_time or utcnow()
            if state.definition.timeout:
                state.deadline = time.time() + state.definition.timeout
            if state.cancel_requested:
                return await self._end_early()
            self.rec.run(RUNNING, f"started by replica {self.ctx.replica}")
        else:
            self.rec.run(RUNNING, f"resumed by replica {self.ctx.replica}")
            if state.cancel_requested:
                return await self._end_early()
            await self._end_interrupted_last()
            # A step that failed under the previous owner (its commit landed while it
            # drained, before the steps it stops were skipped) still stops the run.
            if any(step.status == FAILED for step in state.steps.values()):
                self._failed()
        while True:
            if state.deadline is not None and time.time() >= state.deadline:
                return await self._end_early(timed_out=True)
            if self._draining:
                if not self._tasks:
                    return await self._leave()
                starts = []
            else:
                starts = await self._schedule()
                if not starts and not self._tasks:
                    return await self._finish()
            await self._settle()
            behind = bool(starts) and self.created.done()
            if not behind:
                await self._commit()
            for step, params in starts:
                self._tasks[step.step_id] = asyncio.create_task(self._calls.run(step, params))
            if behind:
                # After the tasks: the loop runs them first, so their worker calls go
                # out before the commit, which may run inline (see _sqlite_writer).
                self._commit_behind()
            message = await self._next_message()
            while message is not None:
                if message[0] == "cancel":
                    return await self._end_early()
                if message[0] == "broken":
                    raise message[1]
                if message[0] == "parked":  # a retry left to the next owner
                    self._tasks.pop(message[1], None)
                elif message[0] == "done":
                    self._apply(*message[1:])
                message = self._inbox.get_nowait() if not self._inbox.empty() else None

    async def _next_message(self) -> tuple | None:
        if self.state.deadline is None:
            return await self._inbox.get()
        try:
            return await asyncio.wait_for(self._inbox.get(),
                                          max(self.state.deadline - time.time(), 0))
        except TimeoutError:
            return None

    async def _end_interrupted_last(self) -> None:
        """Fails the steps in flight when the previous owner stopped whose retry policy
        has no attempt left, as their call would (before any step starts, so that
        stop_on_failure holds). The others are resumed by _schedule."""
        for sid in self._order:
            step = self.state.steps[sid]
            if step.status == RUNNING:  # none has a task yet
                error = await self._calls.interrupted_last(step)
                if error is not None:
                    self._apply(sid, None, error)

    async def _schedule(self) -> list[tuple[StepState, dict[str, Any]]]:
        steps, starts = self.state.steps, []
        slots = self._limit - len(self._tasks)
        for sid in self._order:
            step = steps[sid]
            if step.status == RUNNING and sid not in self._tasks:
                # In flight when the previous owner died, with an attempt left (see
                # _end_interrupted_last): same key, next attempt.
                attempt = step.attempts + 1
                self.rec.step(step, RUNNING, f"attempt {attempt} (resumed after the previous "
                              "owner stopped)", attempts=attempt)
                starts.append((step, step.input or {}))
                slots -= 1
                continue
            if step.status != PENDING:
                continue
            if self._stopping:
                self.rec.step(step, SKIPPED, "not run: the run is stopping after a failure")
                continue
            blocked = next((d for d in self._needs[sid] if steps[d].status in
                            STEP_UNSUCCESSFUL and not self._satisfied(d)), None)
            if blocked is not None:
                self.rec.step(step, SKIPPED,
                              f"not run: dependency {blocked} is {steps[blocked].status}")
                continue
            if slots <= 0 or not all(self._satisfied(d) for d in self._needs[sid]) \
                    or any(steps[a].status not in STEP_TERMINAL for a in self._after[sid]):
                continue
            if self.state.directives.skips(self.state.definition.step(sid).params):
                self.rec.step(step, SKIPPED, "not run: a dry run produces no step outputs "
                              "for its ${steps...} references to read")
                continue
            try:
                params = await self._resolve(sid)
            except BadReference as exc:
                self.rec.step(step, FAILED, f"failed: unresolved reference {exc}", error={
                    "code": "FAILED_PRECONDITION", "message": f"unresolved reference {exc}",
                    "reason": "UNRESOLVED_REFERENCE"}, end_time=utcnow())
                self._failed()
                continue
            attempt = step.attempts + 1
            self.rec.step(step, RUNNING, f"attempt {attempt}", attempts=attempt, input=params,
                          start_time=step.start_time or utcnow(), end_time=None)
            starts.append((step, params))
            slots -= 1
        return starts

    def _satisfied(self, step_id: str) -> bool:
        """Whether the steps that depend on `step_id` may start: it succeeded, or a dry
        run skipped it only for want of step outputs to read (its own dependencies
        satisfied), and dry-runs its dependants as usual."""
        step = self.state.steps[step_id]
        if step.status == SUCCEEDED:
            return True
        directives = self.state.directives
        return (step.status == SKIPPED and directives.dry_run
                and directives.skips(self.state.definition.step(step_id).params)
                and all(self._satisfied(d) for d in self._needs[step_id]))

    async def _resolve(self, step_id: str) -> dict[str, Any]:
        params = self.state.definition.step(step_id).params
        if not needs_resolving(params):
            return params
        scope: dict[str, Any] = {"input": self.state.input, "steps": self.state.outputs()}
        if "${context." in str(params) and self.state.session_id and self.ctx.sessions:
            session = await self.ctx.sessions.require_active(self.state.session_id, 5.0)
            scope["context"] = struct_to_dict(session.context.values)
        return resolve(params, scope)

    def _failed(self) -> None:
        if self.state.definition.error_handling == STOP_ON_FAILURE:
            self._stopping = True

    def _apply(self, step_id: str, result: dict[str, Any] | None,
               error: dict[str, Any] | None) -> None:
        self._tasks.pop(step_id, None)
        step = self.state.steps[step_id]
        if error is None:
            self.rec.step(step, SUCCEEDED, "succeeded", output=result, end_time=utcnow())
        else:
            self.rec.step(step, FAILED, f"failed: {error['code']}: {error['message']}",
                          error=error, end_time=utcnow())
            self._failed()

    async def _stop_tasks(self) -> list[str]:
        tasks, self._tasks = self._tasks, {}
        for task in tasks.values():
            task.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)
        return list(tasks)

    async def _end_early(self, timed_out: bool = False) -> None:
        """Cancel or run timeout: in-flight steps end, pending ones are SKIPPED."""
        await self._stop_tasks()
        while not self._inbox.empty():
            message = self._inbox.get_nowait()
            if message[0] == "done":
                self._apply(*message[1:])
        timeout = self.state.definition.timeout
        why = f"the run did not finish within its timeout of {timeout}s"
        run_error = ({"code": "DEADLINE_EXCEEDED", "reason": "RUN_TIMEOUT", "message": why}
                     if timed_out else None)
        for step in self.state.steps.values():
            if step.status == RUNNING:
                if timed_out:
                    self.rec.step(step, FAILED, "failed: the run timed out", error=run_error,
                                  end_time=utcnow())
                else:
                    self.rec.step(step, CANCELLED, "cancelled while in flight", error={
                        "code": "CANCELLED", "message": "the run was cancelled",
                        "reason": "RUN_CANCELLED"}, end_time=utcnow())
            elif step.status == PENDING:
                self.rec.step(step, SKIPPED, "not run: the run "
                              + ("timed out" if timed_out else "was cancelled"))
        self.state.end_time = utcnow()
        if timed_out:
            self.rec.run(FAILED, why, error=run_error)
        else:
            self.rec.run(CANCELLED, "cancelled")
        await self._commit()

    async def _leave(self) -> None:
        """Ends a drain: commits what it recorded, and finishes the run only when no
        step is left to run (the next owner resumes it otherwise)."""
        if all(s.status in STEP_TERMINAL for s in self.state.steps.values()):
            return await self._finish()
        await self._commit()

    async def _finish(self) -> None:
        steps = list(self.state.steps.values())
        failed = [s for s in steps if s.status == FAILED]
        self.state.end_time = utcnow()
        if not failed:
            self.rec.run(SUCCEEDED, "succeeded")
        else:
            first = min(failed, key=lambda s: (s.end_time or utcnow(), s.position))
            error = {**(first.error or {}), "step_id": first.step_id}
            some_ok = any(s.status == SUCCEEDED for s in steps)
            status = (PARTIAL if some_ok and self.state.definition.error_handling
                      != STOP_ON_FAILURE else FAILED)
            self.rec.run(status, f"{len(failed)} step(s) failed; first: {first.step_id}",
                         error=error)
        await self._commit()
