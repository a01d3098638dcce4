"""Reading a run's events as they happen: WatchRun's stream, and waiting for a run
to end.

Events are the rows of wf_run_events. Past ones come from the table (or, for
a run this replica drives, from the copy its executor keeps of what it
committed); live ones come from this replica's commits, handed over by the
EventHub after each commit, or from the table again when there is a gap or
the run is driven elsewhere.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from types import SimpleNamespace
from typing import Any

from . import _constants as k
from ._events import EventHub
from ._executor import RunExecutor
from ._runs import RunStore
from ._states import RUN_TERMINAL

_PAGE = 500


async def wait_ended(hub: EventHub, runs: RunStore, run_id: str, timeout: float) -> str:
    """The run's status once it has ended, or when `timeout` passes."""
    deadline = time.monotonic() + timeout
    with hub.subscribe(run_id) as sub:
        while True:
            status, _ = await runs.status_and_seq(run_id)
            left = deadline - time.monotonic()
            if status in RUN_TERMINAL or left <= 0:
                return status
            await sub.wait(min(left, k.WATCH_POLL_SECONDS))


async def watch_events(hub: EventHub, runs: RunStore, executors: Mapping[str, RunExecutor],
                       run_id: str, after: int = 0) -> AsyncIterator[Any]:
    """The run's events after `after`: past ones, then live ones until the run ends.
    `executors` are the runs this replica drives."""
    with hub.subscribe(run_id) as sub:
        executor = executors.get(run_id)
        if executor is not None and executor.log and executor.log[0]["seq"] <= after + 1:
            ended, seq_at_start = False, 0
            rows: list[Any] = [SimpleNamespace(**e) for e in executor.log if e["seq"] > after]
        else:
            status, seq_at_start = await runs.status_and_seq(run_id)
            ended = status in RUN_TERMINAL
            rows = await runs.events(run_id, after, _PAGE)
        last = after
        while True:
            for row in rows:
                yield row
                last = row.seq
                if row.run_status in RUN_TERMINAL and (
                        row.seq > seq_at_start or (ended and row.seq == seq_at_start)):
                    return
            if len(rows) == _PAGE:
                rows = await runs.events(run_id, last, _PAGE)
                continue
            if ended and last >= seq_at_start:
                return
            live = sub.take(last)
            if live == []:
                await sub.wait(1.0 if run_id in executors else k.WATCH_POLL_SECONDS)
                live = sub.take(last)
            rows = ([SimpleNamespace(**e) for e in live] if live
                    else await runs.events(run_id, last, _PAGE))
