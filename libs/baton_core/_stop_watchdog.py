"""A stop that cannot hang: past its budget, what still runs is logged and the
process exits.

A service that does not end after SIGTERM is killed by whoever stops it
(`baton up` a little after this budget, Kubernetes after its grace period),
with nothing said of why. This watchdog runs on its own thread, so it fires
even when the event loop is stuck: it logs every asyncio task's stack and
every thread's traceback, then exits with status 1.
"""

from __future__ import annotations

import asyncio
import faulthandler
import logging
import os
import sys
import threading
from collections.abc import Mapping
from typing import Any

from . import _constants as c
from ._env import SettingError, float_setting

log = logging.getLogger("baton.server")

# Seconds a stop may take beyond its drains and grace: closing channels and
# pools, the last writes.
STOP_MARGIN = 10.0


def stop_budget(grace: float, drain: float = c.HEALTH_DRAIN, extra: float = 0.0,
                margin: float = STOP_MARGIN) -> float:
    """Seconds a service's stop may take before its watchdog ends it: its health
    drain, its grace, what the app adds (the orchestrator's workflow drain) and
    a margin."""
    return drain + grace + extra + margin


def service_stop_budget(kind: str, env: Mapping[str, str]) -> float:
    """The stop budget of `baton serve KIND` run with `env` (a supervisor waits at
    least this long before a SIGKILL, so that a stop that hangs says where). A
    setting the service would refuse counts as its default: it does not start."""

    def seconds(name: str, default: float) -> float:
        try:
            return float_setting(env, name, default, zero_ok=True)
        except SettingError:
            return default

    extra = (seconds(c.ENV_WORKFLOW_DRAIN, c.DEFAULT_WORKFLOW_DRAIN)
             if kind == "orchestrator" else 0.0)
    return stop_budget(seconds(c.ENV_GRACE, c.DEFAULT_GRACE), extra=extra)


def task_stacks(loop: asyncio.AbstractEventLoop) -> str:
    """Where each of the loop's tasks waits, await by await (read from another
    thread: best effort)."""
    for _ in range(5):
        try:
            tasks = list(asyncio.all_tasks(loop))
            break
        except RuntimeError:  # the set of tasks changed while it was read
            continue
    else:
        return "(the tasks could not be read)"
    lines = []
    for task in tasks:
        lines.append(f"task {task.get_name()}:")
        try:
            lines.extend(_awaits(task.get_coro()))
        except Exception as exc:  # noqa: BLE001 - a diagnostic must not fail the exit
            lines.append(f"  (its stack could not be read: {exc!r})")
    return "\n".join(lines)


def _awaits(awaitable: Any) -> list[str]:
    """The frames of a coroutine and of what it awaits, outermost first
    (Task.get_stack gives only the outermost)."""
    lines = []
    for _ in range(100):
        frame = getattr(awaitable, "cr_frame", None) or getattr(awaitable, "gi_frame", None) \
            or getattr(awaitable, "ag_frame", None)
        if frame is None:
            if awaitable is not None:
                lines.append(f"  waiting for {awaitable!r}"[:300])
            break
        code = frame.f_code
        lines.append(f'  File "{code.co_filename}", line {frame.f_lineno}, in {code.co_name}')
        awaitable = getattr(awaitable, "cr_await", None) or \
            getattr(awaitable, "gi_yieldfrom", None) or getattr(awaitable, "ag_await", None)
    return lines


def _give_up(loop: asyncio.AbstractEventLoop, budget: float) -> None:
    log.error("the stop did not end within %.1fs; exiting. Still running:\n%s",
              budget, task_stacks(loop))
    faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    for handler in logging.getLogger().handlers:
        handler.flush()
    os._exit(1)


def watch_stop(budget: float, loop: asyncio.AbstractEventLoop) -> threading.Timer:
    """Exits the process (status 1) unless the returned timer is cancelled within
    `budget` seconds."""
    timer = threading.Timer(budget, _give_up, args=(loop, budget))
    timer.daemon = True
    timer.name = "baton-stop-watchdog"
    timer.start()
    return timer
