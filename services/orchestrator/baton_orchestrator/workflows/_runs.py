"""Runs in SQL: reading runs, steps and events; ownership leases; cancel and retry
(with their request_ids, see _requests)."""

from __future__ import annotations

import builtins
import datetime as dt
import json
import time
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from baton_core import NotFound, decode_page_token, encode_page_token, finish_before_cancel

from . import _tables as t
from ._records import Recorder, RunState
from ._requests import RunRequest, applied
from ._states import (
    CANCELLED,
    PENDING,
    RUN_ACTIVE,
    RUN_RETRYABLE,
    STEP_UNSUCCESSFUL,
    InvalidTransition,
    advance_run,
)


def _not_found(run_id: str) -> NotFound:
    return NotFound(f"run {run_id} does not exist", reason="RUN_NOT_FOUND",
                    metadata={"run_id": run_id})


class RunStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def get(self, run_id: str) -> tuple[Any, list[Any]]:
        """The run's row and its step rows in definition order."""
        async with self._engine.connect() as conn:
            run = (await conn.execute(select(t.runs).where(t.runs.c.run_id == run_id))).first()
            if run is None:
                raise _not_found(run_id)
            steps = (await conn.execute(select(t.run_steps).where(
                t.run_steps.c.run_id == run_id).order_by(t.run_steps.c.position))).all()
        return run, list(steps)

    async def by_request_id(self, request_id: str) -> str | None:
        async with self._engine.connect() as conn:
            return (await conn.execute(select(t.runs.c.run_id).where(
                t.runs.c.request_id == request_id))).scalar()

    async def by_idempotency_key(self, actor: str, key: str) -> str | None:
        async with self._engine.connect() as conn:
            return (await conn.execute(select(t.runs.c.run_id).where(
                t.runs.c.actor == actor, t.runs.c.idempotency_key == key))).scalar()

    async def load(self, run_id: str) -> RunState:
        states = await self.load_many([run_id])
        if not states:
            raise _not_found(run_id)
        return states[0]

    async def load_many(self, run_ids: list[str]) -> list[RunState]:
        """Runs as their state, in three reads; runs that do not exist are left out."""
        if not run_ids:
            return []
        async with self._engine.connect() as conn:
            return await _load_many(conn, run_ids)

    async def list(self, *, workflow_id: str, statuses: list[str], since: dt.datetime | None,
                   until: dt.datetime | None, size: int, token: str,
                   actor: str | None = None) -> tuple[list[Any], str]:
        """A page of runs, newest first (only `actor`'s when given), and the next token."""
        r = t.runs
        # A listed run carries no definition: not reading it spares parsing its JSON.
        query = (select(*(c for c in r.c if c.key != "definition"))
                 .order_by(r.c.run_id.desc()).limit(size + 1))
        if workflow_id:
            query = query.where(r.c.workflow_id == workflow_id)
        if actor is not None:
            query = query.where(r.c.actor == actor)
        if statuses:
            query = query.where(r.c.status.in_(statuses))
        if since is not None:
            query = query.where(r.c.create_time >= since)
        if until is not None:
            query = query.where(r.c.create_time < until)
        scope = f"runs\0{workflow_id}\0{actor}\0{sorted(statuses or ())}\0{since}\0{until}"
        after = decode_page_token(token, scope, id=str).get("id")
        if after:
            query = query.where(r.c.run_id < after)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
            size = _fitting(rows, size)
            ids = [row.run_id for row in rows[:size]]
            counts: Iterable[Any] = await conn.execute(
                select(t.run_steps.c.run_id, t.run_steps.c.status, func.count())
                .where(t.run_steps.c.run_id.in_(ids))
                .group_by(t.run_steps.c.run_id, t.run_steps.c.status)) if ids else []
        by_run: dict[str, dict[str, int]] = {}
        for run_id, status, count in counts:
            by_run.setdefault(run_id, {})[status] = count
        page = [(row, by_run.get(row.run_id, {})) for row in rows[:size]]
        return page, encode_page_token({"id": ids[-1]}, scope) if len(rows) > size else ""

    async def events(self, run_id: str, after: int = 0, limit: int = 1000) -> builtins.list[Any]:
        e = t.run_events
        async with self._engine.connect() as conn:
            return list((await conn.execute(
                select(e).where(e.c.run_id == run_id, e.c.seq > after)
                .order_by(e.c.seq).limit(limit))).all())

    async def actor_of(self, run_id: str) -> str:
        """Who started the run; NotFound when there is no such run."""
        async with self._engine.connect() as conn:
            actor = (await conn.execute(select(t.runs.c.actor).where(
                t.runs.c.run_id == run_id))).scalar()
        if actor is None:
            raise _not_found(run_id)
        return actor

    async def status_and_seq(self, run_id: str) -> tuple[str, int]:
        """The run's status and last event sequence number, read in one statement."""
        seq = (select(func.coalesce(func.max(t.run_events.c.seq), 0))
               .where(t.run_events.c.run_id == run_id).scalar_subquery())
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(t.runs.c.status, seq.label("seq"))
                                      .where(t.runs.c.run_id == run_id))).first()
        if row is None:
            raise _not_found(run_id)
        return row.status, row.seq

    # Leases -------------------------------------------------------------------------------

    @finish_before_cancel
    async def claim(self, replica: str, ttl: float, limit: int,
                    run_id: str | None = None) -> builtins.list[str]:
        """Takes up to `limit` active runs whose lease lapsed (or that have no owner);
        with `run_id`, only that run.

        PostgreSQL locks the candidates with FOR UPDATE SKIP LOCKED so that
        replicas claiming at once never wait on each other; SQLite (one
        writer at a time) ignores the clause. The outer conditions are
        checked again on the locked rows either way.
        """
        if limit <= 0:
            return []
        now = time.time()
        r = t.runs
        lapsed = and_(r.c.status.in_(RUN_ACTIVE),
                      or_(r.c.owner.is_(None), r.c.lease_expires_at.is_(None),
                          r.c.lease_expires_at < now))
        if run_id is not None:
            lapsed = and_(lapsed, r.c.run_id == run_id)
        candidates = (select(r.c.run_id).where(lapsed).order_by(r.c.create_time).limit(limit)
                      .with_for_update(skip_locked=True))
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(r).where(r.c.run_id.in_(candidates.scalar_subquery()), lapsed)
                .values(owner=replica, lease_expires_at=now + ttl).returning(r.c.run_id))
            return [row.run_id for row in result]

    @finish_before_cancel
    async def renew(self, replica: str, ttl: float) -> tuple[set[str], set[str]]:
        """Extends this replica's leases; returns (runs owned, runs asked to cancel)."""
        r = t.runs
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(r).where(r.c.owner == replica, r.c.status.in_(RUN_ACTIVE))
                .values(lease_expires_at=time.time() + ttl)
                .returning(r.c.run_id, r.c.cancel_requested))
            rows = result.all()
        return {row.run_id for row in rows}, {row.run_id for row in rows if row.cancel_requested}

    @finish_before_cancel
    async def release(self, replica: str, run_ids: builtins.list[str]) -> None:
        """Gives runs back (graceful stop) so another replica takes them at once."""
        if not run_ids:
            return
        async with self._engine.begin() as conn:
            await conn.execute(update(t.runs).where(
                t.runs.c.run_id.in_(run_ids), t.runs.c.owner == replica)
                .values(owner=None, lease_expires_at=None))

    async def applied(self, request: RunRequest) -> bool:
        """Whether `request` was applied already (see _requests.applied)."""
        async with self._engine.connect() as conn:
            return await applied(conn, request)

    async def _repeated(self, request: RunRequest | None) -> bool:
        """After a refusal or a unique violation: whether `request` is one applied
        meanwhile (by a concurrent call with the same id), to be answered as such."""
        return request is not None and await self.applied(request)

    async def request_cancel(self, run_id: str, request: RunRequest | None = None) -> bool:
        """Flags an active run for cancellation, recording `request` with the flag;
        INVALID_TRANSITION for an ended run. Returns whether the run is active and
        flagged: a repeated `request` writes nothing, and its run may have ended or
        been retried since."""
        if request is None or not await self.applied(request):
            try:
                await self._flag_cancel(run_id, request)
                return True
            except (InvalidTransition, IntegrityError):
                if not await self._repeated(request):
                    raise
        r = t.runs
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(r.c.status, r.c.cancel_requested).where(
                r.c.run_id == run_id))).first()
        if row is None:
            raise _not_found(run_id)
        return row.status in RUN_ACTIVE and bool(row.cancel_requested)

    @finish_before_cancel
    async def _flag_cancel(self, run_id: str, request: RunRequest | None) -> None:
        r = t.runs
        async with self._engine.begin() as conn:
            flagged = (await conn.execute(
                update(r).where(r.c.run_id == run_id, r.c.status.in_(RUN_ACTIVE))
                .values(cancel_requested=True))).rowcount == 1
            if flagged and request is not None:
                await conn.execute(t.run_requests.insert(), request.row())
            status = (await conn.execute(select(r.c.status).where(r.c.run_id == run_id))).scalar()
            if status is None:
                raise _not_found(run_id)
            if not flagged:
                advance_run(run_id, status, CANCELLED)

    async def retry(self, run_id: str, replica: str, ttl: float,
                    request: RunRequest | None = None) -> builtins.list[dict[str, Any]] | None:
        """Puts an ended, unsuccessful run back to PENDING, owned by `replica`, and
        records `request` with that; succeeded steps keep their outputs, the others go
        back to PENDING. Returns the events written, or None for a repeated `request`
        (nothing is written)."""
        if request is not None and await self.applied(request):
            return None
        try:
            return await self._retry(run_id, replica, ttl, request)
        except (InvalidTransition, IntegrityError):
            if not await self._repeated(request):
                raise
            return None

    @finish_before_cancel
    async def _retry(self, run_id: str, replica: str, ttl: float,
                     request: RunRequest | None) -> builtins.list[dict[str, Any]]:
        state = await self.load(run_id)
        advance_run(run_id, state.status, PENDING)
        r = t.runs
        async with self._engine.begin() as conn:
            # The conditional update is the real check: of two concurrent retries one wins.
            # It locks the run; the status is written with the rest below.
            result = await conn.execute(
                update(r).where(r.c.run_id == run_id, r.c.status.in_(RUN_RETRYABLE))
                .values(owner=replica, lease_expires_at=time.time() + ttl,
                        cancel_requested=False))
            if result.rowcount != 1:
                current = (await conn.execute(select(r.c.status).where(
                    r.c.run_id == run_id))).scalar()
                if current is None:
                    raise _not_found(run_id)
                advance_run(run_id, current, PENDING)
            # Read again under the update's lock: the steps as they are now (another
            # retry may have run the run meanwhile), not as `state` saw them.
            state = (await _load_many(conn, [run_id]))[0]
            rec = Recorder(state, replica)
            state.retry_count += 1
            state.end_time = None
            state.error = None
            rec.run(PENDING, f"retry #{state.retry_count} requested")
            for step in state.steps.values():
                if step.status in STEP_UNSUCCESSFUL:
                    rec.step(step, PENDING, "reset for retry", output=None, input=None,
                             end_time=None, first_attempt=step.attempts + 1)
            changes = rec.take()
            assert changes.run is not None  # rec.run made it
            await conn.execute(update(r).where(r.c.run_id == run_id).values(
                {k: v for k, v in changes.run.items() if k != "b_run_id"}))
            for row in changes.steps.values():
                await conn.execute(update(t.run_steps).where(
                    t.run_steps.c.run_id == run_id, t.run_steps.c.step_id == row["step_id"])
                    .values({k: v for k, v in row.items() if k not in ("run_id", "step_id")}))
            await conn.execute(t.run_events.insert(), changes.events)
            if request is not None:
                await conn.execute(t.run_requests.insert(), request.row())
        return changes.events


async def _load_many(conn: AsyncConnection, run_ids: list[str]) -> list[RunState]:
    """RunStore.load_many on `conn`, inside its transaction."""
    r, st, e = t.runs, t.run_steps, t.run_events
    runs = (await conn.execute(select(r).where(r.c.run_id.in_(run_ids)))).all()
    steps = (await conn.execute(select(st).where(st.c.run_id.in_(run_ids))
                                .order_by(st.c.run_id, st.c.position))).all()
    seqs = dict((await conn.execute(
        select(e.c.run_id, func.max(e.c.seq)).where(e.c.run_id.in_(run_ids))
        .group_by(e.c.run_id))).all())
    by_run: dict[str, list[Any]] = {}
    for step in steps:
        by_run.setdefault(step.run_id, []).append(step)
    order = {run_id: i for i, run_id in enumerate(run_ids)}
    return [RunState.from_rows(run, by_run.get(run.run_id, []), seqs.get(run.run_id) or 0)
            for run in sorted(runs, key=lambda row: order[row.run_id])]


# What one page of runs may carry of their inputs: a reply stays under what a
# gRPC client takes by default however large the inputs are (each at most
# MAX_INPUT_BYTES).
PAGE_BYTES = 3 * 1024 * 1024  # (a gRPC client takes 4 MiB by default)


def _fitting(rows: Sequence[Any], size: int) -> int:
    """How many of the first `size` rows fit in one page (at least one)."""
    total = 0
    for count, row in enumerate(rows[:size]):
        total += len(json.dumps(row.input)) if row.input else 0
        if total > PAGE_BYTES:
            return max(count, 1)
    return size
