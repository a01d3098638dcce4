"""Giving memory back to the system after a burst of runs.

A burst of runs leaves the heap full of freed blocks, and glibc does not hand
free pages back by itself, so RSS stays near its peak. Once the engine is idle
again, a full collection and glibc's malloc_trim return what they can. The
rest is CPython's own allocator: its 1 MiB arenas are freed only when empty,
and after a burst most of those the burst added still hold a few live blocks
(a few thousand survivors, such as cache entries made meanwhile, pin them).
What stays therefore grows with the peak, which the engine keeps low by
taking StartRuns a few at a time (see the engine): measured on SQLite after
1,000 runs at once, 88 arenas (35 more than before) when every StartRun was
worked on at once, 58-62 with 16 at a time. The servers' stream limit
(BATON_MAX_STREAMS_PER_CONNECTION, see baton_core._server) then kept the
burst's other ~850 calls waiting in the client instead of inside gRPC's and
the engine's objects here: 5 arenas more instead of 9-10. Among the blocks
that still pin them after the burst: the free lists of asyncio's and uvloop's
C types (future iterators, handles, timer handles: up to ~250 each, reused
last-freed first), and the weak references to cursors each sqlite3
connection keeps until it prunes them every 200 cursors.
"""

from __future__ import annotations

from baton_core._memory import release_free_memory

__all__ = ["BURST", "IDLE_DELAY", "release_free_memory"]

# Runs driven since the last trim that make it worth trimming once idle. (Not
# runs at once: StartRun takes bursts a few at a time, so they rarely pile up.)
BURST = 100
# Seconds the engine must stay idle before the trim.
IDLE_DELAY = 1.0
