"""Giving memory back to the system once a burst of work is over.

A burst leaves the heap full of freed blocks, and glibc does not hand free
pages back by itself, so RSS stays near the burst's peak. Once the process is
idle again, a full collection and glibc's malloc_trim return what they can
(CPython's own arenas are freed only when empty; see the orchestrator's
workflows/_memory.py for what keeps some of them).

Every Baton server runs `trim_when_idle`: it watches the process's CPU time,
and after a second of work (busy) followed by a quiet second (idle) it trims
once. It costs nothing per call. Measured on the orchestrator after 1,000
GetRuns (100 at a time) that followed a burst of runs: 1.4-1.5 MB less RSS.
Before it trims, the server closes the database connections its pools keep
idle (see `baton_core._db.release_idle_connections`).

Every Baton server also pins glibc's trim and mmap thresholds at their start
values (`pin_malloc_thresholds`). glibc raises both whenever a large block it
had mapped is freed (up to 32 MiB and 64 MiB), and from then on a thread's
heap keeps up to the raised trim threshold of free memory at its top, which
malloc_trim does not give back for threads' heaps. A thread that freed a 4
MiB buffer and then 8 MB of small blocks kept all 8 MB; with the thresholds
pinned it kept 0.2 MB.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import inspect
import time
from collections.abc import Callable

# CPU seconds per second of wall time (all threads) that make a second busy,
# and at most this much makes it idle. An idle Baton process uses 0.5-15 ms/s.
BUSY_SHARE = 0.10
IDLE_SHARE = 0.03
INTERVAL = 1.0


def _glibc_function(name: str):
    """A function of the C library, or None when it has none (not glibc)."""
    library = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(library), name) if library else None
    except (OSError, AttributeError):
        return None


_TRIM = _glibc_function("malloc_trim")

# mallopt(3) parameters, and the values glibc starts with.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
TRIM_THRESHOLD = 128 * 1024
MMAP_THRESHOLD = 128 * 1024


def pin_malloc_thresholds() -> bool:
    """Keeps glibc's trim and mmap thresholds at 128 KiB for the process's life
    (setting them turns glibc's dynamic raising of both off). False when the C
    library is not glibc."""
    mallopt = _glibc_function("mallopt")
    if mallopt is None:
        return False
    return bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
                and mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))


def release_free_memory() -> bool:
    """Collects garbage and returns free heap pages to the system (glibc only)."""
    gc.collect()
    if _TRIM is None:
        return False
    _TRIM(0)
    return True


class IdleTrim:
    """Decides, second by second, when a busy spell has ended."""

    def __init__(self, busy: float = BUSY_SHARE, idle: float = IDLE_SHARE) -> None:
        self.busy_share, self.idle_share = busy, idle
        self.busy = False

    def trim_now(self, cpu: float, wall: float) -> bool:
        """Whether to trim after an interval of `wall` seconds that used `cpu`."""
        share = cpu / wall if wall > 0 else 0.0
        if share >= self.busy_share:
            self.busy = True
            return False
        if self.busy and share <= self.idle_share:
            self.busy = False
            return True
        return False


async def trim_when_idle(release: Callable[[], object] = release_free_memory,
                         interval: float = INTERVAL, decide: IdleTrim | None = None) -> None:
    """Trims the heap once after each busy spell, until cancelled. `release`
    may be a coroutine function."""
    decide = decide or IdleTrim()
    cpu, wall = time.process_time(), time.monotonic()
    while True:
        await asyncio.sleep(interval)
        now_cpu, now_wall = time.process_time(), time.monotonic()
        if decide.trim_now(now_cpu - cpu, now_wall - wall):
            pending = release()
            if inspect.isawaitable(pending):
                await pending
            now_cpu, now_wall = time.process_time(), time.monotonic()  # not the trim's CPU
        cpu, wall = now_cpu, now_wall
