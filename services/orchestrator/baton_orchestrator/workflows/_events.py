"""The one event stream's local side: wake watchers, count metrics, write logs.

Events are rows in wf_run_events, written in the transaction that made the
change. After each commit the writer hands them here: watchers of those runs
re-read the table, and metrics and log lines are derived from the same
events. There is no other monitoring path.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from typing import Any

from prometheus_client import Counter

from ._states import RUN_TERMINAL, STEP_TERMINAL

log = logging.getLogger("baton.workflows.events")

RUNS_ENDED = Counter("baton_workflow_runs_ended_total", "Runs that ended, by status",
                     ["status"])
STEPS_ENDED = Counter("baton_workflow_steps_ended_total", "Steps that ended, by status",
                      ["status"])
EVENTS = Counter("baton_workflow_events_total", "Run and step events committed")


class Subscription:
    """A watcher of one run: woken, and handed the run's events, after each commit."""

    MAX_BUFFERED = 1000

    def __init__(self, hub: EventHub, run_id: str) -> None:
        self._hub = hub
        self.run_id = run_id
        self._event = asyncio.Event()
        self._buffer: list[dict[str, Any]] = []
        self._overflowed = False

    def deliver(self, events: list[dict[str, Any]]) -> None:
        if len(self._buffer) + len(events) > self.MAX_BUFFERED:
            self._buffer.clear()
            self._overflowed = True
        else:
            self._buffer.extend(events)
        self._event.set()

    def take(self, after: int) -> list[dict[str, Any]] | None:
        """Committed events after sequence `after` ([] when there are none yet); None
        when there is a gap, and the caller must read the table instead."""
        events, self._buffer = [e for e in self._buffer if e["seq"] > after], []
        overflowed, self._overflowed = self._overflowed, False
        # What woke the watcher is consumed: the next wait() waits for a new commit,
        # instead of returning at once and sending the caller to the table.
        self._event.clear()
        if overflowed or (events and events[0]["seq"] != after + 1):
            return None
        return events

    async def wait(self, timeout: float) -> None:
        """Returns when new events of the run were committed here, or after `timeout`."""
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            pass
        self._event.clear()

    def close(self) -> None:
        self._hub.unsubscribe(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventHub:
    def __init__(self) -> None:
        self._subs: dict[str, set[Subscription]] = defaultdict(set)

    def subscribe(self, run_id: str) -> Subscription:
        sub = Subscription(self, run_id)
        self._subs[run_id].add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.run_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.run_id]

    def committed(self, events: list[dict[str, Any]]) -> None:
        EVENTS.inc(len(events))
        if self._subs:
            by_run: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for event in events:
                if event["run_id"] in self._subs:
                    by_run[event["run_id"]].append(event)
            for run_id, run_events in by_run.items():
                for sub in self._subs[run_id]:
                    sub.deliver(run_events)
        for event in events:
            run_id = event["run_id"]
            run_status, step_status = event["run_status"], event["step_status"]
            if run_status in RUN_TERMINAL:
                RUNS_ENDED.labels(run_status).inc()
                log.info("run %s %s: %s", run_id, run_status, event["message"])
            elif step_status in STEP_TERMINAL:
                STEPS_ENDED.labels(step_status).inc()
            if log.isEnabledFor(logging.DEBUG):
                log.debug("run %s #%d %s %s: %s", run_id, event["seq"], event["step_id"] or "-",
                          run_status or step_status, event["message"])
