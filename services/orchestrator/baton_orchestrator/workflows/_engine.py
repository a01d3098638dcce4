"""The workflow engine of one replica: its runs, their leases, and the run operations.

Each run is owned by one replica under a lease (`wf_runs.owner`,
`lease_expires_at`). A replica owns the runs it starts, renews its leases
every third of their TTL, and claims runs whose lease lapsed (a dead
replica's) or that wait unowned; PostgreSQL and the embedded SQLite default
go through the same code.

A replica drives at most `max_active_runs` runs at once. A run started
beyond that is recorded as usual, owned by this replica, and waits in memory
(its state only: no task, no calls, no queued commits) until a run ends here.
Past as many waiting as driven, further runs are recorded unowned instead,
for whichever replica has room to claim. A replica claims them in batches
into its own wait list, loading each batch in a few reads: once half its
limit fits there, or at once when it has nothing left to drive (a claim per
run that ends would be a write and a load each). Bounding the runs in flight
bounds the memory a burst takes, and with it what the process keeps
afterwards.

Leases are renewed in _leases. A graceful stop drains the runs first, then gives
them back (see _drain).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from baton_core import is_sqlite, make_engine, migrate, new_id

from .._dispatch import Dispatcher
from .._method_cache import MethodCache
from .._policies import PolicyBook
from .._sessions import SessionsGateway
from . import _constants as k
from ._attempts import ExecutorContext
from ._config import EngineConfig
from ._definition import WorkflowDef
from ._directives import RunDirectives
from ._drain import stop_runs
from ._events import EventHub
from ._executor import RunExecutor
from ._leases import keep_leases, renew_leases
from ._memory import BURST, IDLE_DELAY, release_free_memory
from ._records import Changes, Recorder, RunState, StepState
from ._requests import RunRequest
from ._runs import RunStore
from ._states import RUN_ACTIVE
from ._store import DefinitionStore
from ._watch import wait_ended, watch_events
from ._writer import Writer

log = logging.getLogger("baton.workflows")
MIGRATIONS = str(Path(__file__).parent / "migrations")


class WorkflowEngine:
    def __init__(self, database_url: str, dispatcher: Dispatcher, cache: MethodCache,
                 policies: PolicyBook, sessions: SessionsGateway | None,
                 config: EngineConfig | None = None) -> None:
        self.config = config or EngineConfig()
        self.replica = self.config.replica_id or new_id("rep_")
        self.cache = cache
        self.policies = policies
        self.sessions = sessions
        self._url = database_url
        self._deps = (dispatcher, cache, policies, sessions)
        self._executors: dict[str, RunExecutor] = {}
        # Runs recorded as this replica's that wait for room, oldest first, with
        # when they were recorded (monotonic clock).
        self._waiting: dict[str, tuple[RunState, float]] = {}
        # Runs of this replica whose first commit is in flight: not orphans yet.
        self._recording: set[str] = set()
        self._launched = 0  # runs driven here since the last trim
        self._queued = False  # runs may wait in SQL for a replica with room
        self._claiming = False
        self._draining = False
        self._lease_task: asyncio.Task | None = None
        self.hub = EventHub()
        # StartRun holds one of these from before it reads the request until the
        # run is recorded (see k.DEFAULT_MAX_STARTING_RUNS).
        self.starting = asyncio.Semaphore(self.config.max_starting_runs)
        self.db: AsyncEngine
        self.definitions: DefinitionStore
        self.runs: RunStore
        self.writer: Writer
        self._ctx: ExecutorContext

    async def start(self) -> None:
        self.db = make_engine(self._url)
        await migrate(self.db, MIGRATIONS, k.VERSION_TABLE)
        self.definitions, self.runs = DefinitionStore(self.db), RunStore(self.db)
        self.writer = Writer(self.db, self.replica, shards=1 if is_sqlite(self.db) else 4,
                             on_commit=self._committed)
        await self.writer.start()
        dispatcher, cache, policies, sessions = self._deps
        self._ctx = ExecutorContext(self.writer, dispatcher, cache, policies, sessions,
                                    self.replica, self.config.default_concurrency)
        self._lease_task = asyncio.create_task(
            keep_leases(self._tend_leases, self.config.lease_seconds), name="wf-leases")
        log.info("workflow engine started: replica %s, lease %.1fs", self.replica,
                 self.config.lease_seconds)

    async def stop(self) -> None:
        task, self._lease_task = self._lease_task, None
        if task is None:
            return
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        self._draining = True
        await stop_runs(self._executors, self._waiting, self._ctx, self.runs, self.replica,
                        self.config)
        await self.writer.stop()
        await self.db.dispose()

    @property
    def active_runs(self) -> int:
        return len(self._executors)

    # Runs ---------------------------------------------------------------------------------

    async def start_run(self, defn: WorkflowDef, *, workflow_id: str | None = None,
                        version: int = 0, input: dict[str, Any] | None = None,
                        session_id: str = "", request_id: str = "",
                        actor: str = "",
                        directives: RunDirectives | None = None) -> RunState | str:
        """Accepts a run once it is durably recorded; returns its state as accepted, or
        the id of the run an earlier call with the same request_id (or the same actor
        and idempotency key) started."""
        directives = directives or RunDirectives()
        key = directives.idempotency_key
        if key:
            existing = await self.runs.by_idempotency_key(actor, key)
            if existing is not None:
                return existing
        # A repeated request_id (or key) breaks a unique constraint on commit; see below.
        state = RunState(run_id=new_id("run_"), definition=defn, workflow_id=workflow_id,
                         workflow_version=version, input=dict(input or {}),
                         session_id=session_id, actor=actor, request_id=request_id or None,
                         directives=directives)
        state.steps = {s.step_id: StepState(step_id=s.step_id, position=i, method=s.method)
                       for i, s in enumerate(defn.steps)}
        try:
            if self._can_drive_now:
                executor = self._launch(self._own(state), new=True)
                await asyncio.shield(executor.created)
            elif len(self._waiting) < self.config.max_active_runs:
                # Over capacity: this replica's, waiting.
                self._own(state)
                self._recording.add(state.run_id)
                try:
                    await self._record_new(state, "run created (waiting for room)")
                finally:
                    self._recording.discard(state.run_id)
                self._wait(state)
            else:  # Far over capacity: queued unowned; any replica's claim takes it.
                self._queued = True
                await self._record_new(state, "run created (queued)")
        except Exception:
            if request_id:
                existing = await self.runs.by_request_id(request_id)
                if existing is not None:
                    return existing
            if key:
                existing = await self.runs.by_idempotency_key(actor, key)
                if existing is not None:
                    return existing
            raise
        return state

    def _own(self, state: RunState) -> RunState:
        state.owner = self.replica
        state.lease_expires_at = time.time() + self.config.lease_seconds
        return state

    async def _record_new(self, state: RunState, message: str) -> None:
        """Commits a new run as it is, without driving it."""
        rec = Recorder(state, self.replica)
        rec.event(message)
        changes = rec.take()
        changes.fence, changes.new_run = False, state.row()
        changes.new_steps = [s.row(state.run_id) for s in state.steps.values()]
        await self.writer.commit(changes)

    async def cancel_run(self, run_id: str, wait: float,
                         request: RunRequest | None = None) -> None:
        """Flags the run for cancellation and waits up to `wait` for it to end. A
        repeated `request` writes nothing, and goes on only while the cancellation
        it asked for is still under way."""
        if not await self.runs.request_cancel(run_id, request):
            return  # repeated: its run has ended, or was retried since
        self._launch_waiting(run_id, cancel=True)
        if run_id not in self._executors:
            # Queued and unowned (or its owner's lease lapsed): taken here to end it now.
            for claimed in await self.runs.claim(self.replica, self.config.lease_seconds, 1,
                                                 run_id=run_id):
                await self._adopt(claimed)
        executor = self._executors.get(run_id)
        if executor is not None:
            executor.cancel()
        # Elsewhere, the owner sees the flag when it renews its lease.
        await self.wait_ended(run_id, wait)

    async def retry_run(self, run_id: str, request: RunRequest | None = None) -> None:
        """Resumes an ended, unsuccessful run here; a repeated `request` does nothing."""
        events = await self.runs.retry(run_id, self.replica, self.config.lease_seconds,
                                       request)
        if events is None:
            return  # repeated: the run was retried then (and is driven wherever it is)
        self.hub.committed(events)
        await self._adopt(run_id)

    async def wait_ended(self, run_id: str, timeout: float) -> str:
        """The run's status once it has ended, or when `timeout` passes."""
        return await wait_ended(self.hub, self.runs, run_id, timeout)

    def watch(self, run_id: str, after: int = 0) -> AsyncIterator[Any]:
        """The run's events after `after`: past ones, then live ones until the run ends."""
        return watch_events(self.hub, self.runs, self._executors, run_id, after)

    def _committed(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            executor = self._executors.get(event["run_id"])
            if executor is not None:
                executor.log.append(event)
        self.hub.committed(events)

    # Ownership ----------------------------------------------------------------------------

    def _launch(self, state: RunState, new: bool = False) -> RunExecutor:
        executor = RunExecutor(state, self._ctx, self._exited, new=new)
        self._executors[state.run_id] = executor
        self._launched += 1
        executor.start()
        return executor

    def _admit(self) -> None:
        """Starts waiting runs, oldest first, while there is room."""
        while not self._draining and self._waiting and \
                len(self._executors) < self.config.max_active_runs:
            self._launch_waiting(next(iter(self._waiting)))

    def _launch_waiting(self, run_id: str, cancel: bool = False) -> None:
        """Drives a waiting run now; with `cancel`, only to end it CANCELLED."""
        waiting = self._waiting.pop(run_id, None)
        if waiting is not None:
            state, _ = waiting
            state.cancel_requested = state.cancel_requested or cancel
            self._launch(state)

    def _wait(self, state: RunState) -> None:
        """Keeps a run this replica owns in memory until there is room to drive it."""
        self._waiting[state.run_id] = (state, time.monotonic())
        self._admit()

    @property
    def _can_drive_now(self) -> bool:
        """Whether a run can start at once: under the limit, and none waits before it."""
        return not self._draining and not self._waiting and \
            len(self._executors) < self.config.max_active_runs

    def _holds(self, run_id: str) -> bool:
        """Whether this replica drives the run, has it waiting, or is recording it."""
        return run_id in self._executors or run_id in self._waiting or run_id in self._recording

    @property
    def _room(self) -> int:
        """Runs this replica may still take on: driven, or waiting in its memory
        (as many as it drives at most)."""
        return 2 * self.config.max_active_runs - len(self._executors) - len(self._waiting)

    def _claim_now(self) -> bool:
        """Whether to claim queued runs now: when nothing waits here and there is
        room to drive one, or when a batch of half the limit fits."""
        return self._can_drive_now or self._room >= max(1, self.config.max_active_runs // 2)

    async def _adopt(self, *run_ids: str, wait_for_room: bool = False) -> None:
        """Drives runs this replica owns, loaded from the database together; with
        `wait_for_room`, they wait in memory while the limit is reached."""
        for state in await self.runs.load_many([r for r in run_ids if not self._holds(r)]):
            if self._holds(state.run_id) or state.owner != self.replica \
                    or state.status not in RUN_ACTIVE:
                continue
            if (wait_for_room or self._draining) and not self._can_drive_now:
                self._wait(state)
            else:
                self._launch(state)

    def _exited(self, executor: RunExecutor) -> None:
        if self._executors.get(executor.run_id) is executor:
            del self._executors[executor.run_id]
        if self._waiting and self._lease_task is not None:
            self._admit()
        if self._queued and not self._claiming and self._lease_task is not None \
                and self._claim_now():
            # Room for queued runs: claim now rather than at the next lease round.
            self._claiming = True
            asyncio.get_running_loop().create_task(self._claim_queued())
        if not self._executors and not self._waiting and self._launched >= BURST:
            self._launched = 0
            asyncio.get_running_loop().call_later(IDLE_DELAY, self._trim)
        if executor.broken and self._lease_task is not None:
            # Give the run back; a claim (here or elsewhere) resumes it from the database.
            asyncio.get_running_loop().create_task(
                self.runs.release(self.replica, [executor.run_id]))

    async def _claim_queued(self) -> None:
        try:
            while self._queued:
                room = self._room
                if room <= 0 or not self._claim_now():
                    return
                claimed = await self.runs.claim(self.replica, self.config.lease_seconds,
                                                min(room, 200))
                if not claimed:
                    self._queued = False  # until the next run is queued here
                if claimed:
                    log.info("claimed %d queued runs", len(claimed))
                await self._adopt(*claimed, wait_for_room=True)
        except Exception:  # noqa: BLE001 - the lease loop resumes them later
            log.exception("claiming queued runs failed; the lease loop will")
        finally:
            self._claiming = False

    def _trim(self) -> None:
        if not self._executors:  # still idle after the burst
            release_free_memory()

    async def _tend_leases(self) -> None:
        owned, cancels = await renew_leases(self.runs, self.replica, self.config.lease_seconds,
                                            self._executors, self._waiting)
        for run_id in cancels:
            self._launch_waiting(run_id, cancel=True)
            cancelled = self._executors.get(run_id)
            if cancelled is not None:
                cancelled.cancel()
        room = self._room
        # Runs this replica owns but does not drive (an executor gave up on a database
        # error) are resumed like claimed ones.
        orphans = [r for r in owned if not self._holds(r)][:max(room, 0)]
        claimed = await self.runs.claim(self.replica, self.config.lease_seconds,
                                        min(room - len(orphans), 200))
        for run_id in [*orphans, *claimed]:
            log.info("resuming run %s", run_id)
            try:
                await self._adopt(run_id, wait_for_room=True)
            except Exception:  # noqa: BLE001 - one bad run must not block the others
                log.exception("run %s: could not be resumed", run_id)
                await self.runs.release(self.replica, [run_id])


__all__ = ["Changes", "EngineConfig", "WorkflowEngine"]
