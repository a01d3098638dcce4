"""Once a busy spell is over, a server closes its pools' idle database connections
and gives free heap back; glibc's thresholds are pinned so that it can."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time

from sqlalchemy import event, text

from baton_core import constants as c
from baton_core import make_engine
from baton_core._db import release_idle_connections
from baton_core._memory import IdleTrim, trim_when_idle


async def _open_at_once(engine, count: int) -> None:
    """Makes the pool open `count` connections by holding them at the same time."""
    holding: list[object] = []
    all_held = asyncio.Event()

    async def hold() -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            holding.append(conn)
            if len(holding) == count:
                all_held.set()
            await asyncio.wait_for(all_held.wait(), 10)

    await asyncio.gather(*(hold() for _ in range(count)))


async def _wait_for(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


async def test_idle_connections_are_closed_and_one_fresh_one_is_kept(database_url,
                                                                     monkeypatch):
    monkeypatch.setenv(c.ENV_DB_POOL_SIZE, "5")  # PostgreSQL: a pool that keeps them
    engine = make_engine(database_url)
    opened, closed = [], []
    event.listen(engine.sync_engine, "connect", lambda conn, _: opened.append(conn))
    event.listen(engine.sync_engine, "close", lambda conn, _: closed.append(conn))
    try:
        threads_before = threading.active_count()
        await _open_at_once(engine, 3)
        assert len(opened) == 3 and engine.sync_engine.pool.checkedin() == 3

        assert await release_idle_connections() >= 1
        assert sorted(map(id, closed)) == sorted(map(id, opened[:3]))  # all three
        # ...and one fresh connection waits in the pool for the next query
        assert len(opened) == 4 and engine.sync_engine.pool.checkedin() == 1
        if engine.dialect.name == "sqlite":  # each one was a thread under aiosqlite
            assert await _wait_for(lambda: threading.active_count() <= threads_before + 1)

        async with engine.connect() as conn:  # the engine goes on, on that connection
            assert (await conn.execute(text("SELECT 41 + 1"))).scalar() == 42
        assert len(opened) == 4
        await release_idle_connections()  # one idle connection: nothing to give back
        assert len(opened) == 4 and len(closed) == 3
        await _open_at_once(engine, 2)
        assert await release_idle_connections() >= 1  # and again after the next spell
        assert len(closed) == 5 and len(opened) == 6
    finally:
        await engine.dispose()


async def test_a_connection_in_use_is_left_alone(database_url, monkeypatch):
    monkeypatch.setenv(c.ENV_DB_POOL_SIZE, "5")
    engine = make_engine(database_url)
    opened, closed = [], []
    event.listen(engine.sync_engine, "connect", lambda conn, _: opened.append(conn))
    event.listen(engine.sync_engine, "close", lambda conn, _: closed.append(conn))
    try:
        await _open_at_once(engine, 3)
        pool = engine.sync_engine.pool
        async with engine.connect() as busy:  # as the workflow writer keeps its own
            in_use = (await busy.get_raw_connection()).driver_connection
            assert await release_idle_connections() >= 1
            # the two idle ones closed, one fresh one opened, the busy one untouched
            assert len(closed) == 2 and len(opened) == 4
            assert all(c.driver_connection is not in_use for c in closed)
            assert (await busy.execute(text("SELECT 7"))).scalar() == 7
            assert pool.checkedout() == 1 and pool.checkedin() == 1
        # the pool still counts right: two connections kept, room for three more
        assert pool.checkedin() == 2 and pool.overflow() == -3
        await _open_at_once(engine, 5)
        assert len(opened) == 7 and pool.checkedin() == 5 and pool.overflow() == 0
    finally:
        await engine.dispose()


async def test_an_in_memory_sqlite_database_is_never_released():
    engine = make_engine("sqlite+aiosqlite:///:memory:")
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE kept (v INTEGER)"))
            await conn.execute(text("INSERT INTO kept VALUES (5)"))
        await release_idle_connections()
        async with engine.connect() as conn:  # its one connection is the database
            assert (await conn.execute(text("SELECT v FROM kept"))).scalar() == 5
    finally:
        await engine.dispose()


async def test_the_idle_task_awaits_a_release_that_is_a_coroutine():
    released: list[float] = []

    async def release() -> None:
        await asyncio.sleep(0)
        released.append(time.monotonic())

    task = asyncio.create_task(trim_when_idle(release, interval=0.1,
                                              decide=IdleTrim(0.3, 0.15)))
    try:
        await asyncio.sleep(0.25)
        busy_until = time.monotonic() + 0.5
        while time.monotonic() < busy_until:  # a busy spell (the loop is blocked)
            sum(range(10_000))
        assert await _wait_for(lambda: bool(released), timeout=2.0)
        assert released[0] > busy_until
    finally:
        task.cancel()


# A thread frees a large mapped buffer (which makes glibc raise its thresholds,
# unless they are pinned), then 8 MB of small blocks; RSS kept once it is gone.
_KEPT_BY_A_THREAD = """
import ctypes, gc, sys, threading
from baton_core._memory import pin_malloc_thresholds, release_free_memory
if sys.argv[1] == "pinned":
    assert pin_malloc_thresholds()
def rss():
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmRSS")).split()[1])
def work():
    big = bytearray(4 << 20)
    del big
    blocks = [bytes(2000) + b"x" for _ in range(4000)]
    del blocks
before = rss()
thread = threading.Thread(target=work)
thread.start()
thread.join()
release_free_memory()
print(rss() - before)
"""


def _kept_kb(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", _KEPT_BY_A_THREAD, mode], check=True,
                         capture_output=True, text=True, timeout=60)
    return int(out.stdout.strip())


def test_pinned_malloc_thresholds_let_a_thread_give_its_freed_heap_back():
    unpinned, pinned = _kept_kb("default"), _kept_kb("pinned")
    assert unpinned > 4_000  # glibc's raised trim threshold kept the thread's free heap
    assert pinned < 2_000 and pinned < unpinned / 4
