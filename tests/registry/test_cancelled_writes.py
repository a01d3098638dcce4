"""A registry write cancelled midway (a client's deadline passes or it goes
away, and grpc.aio cancels the handler) leaves no transaction behind: on
SQLite, one cut in half by the cancellation could leave its connection holding
the write lock, and every later write of the replica then waited out the busy
timeout and failed."""

from __future__ import annotations

import asyncio
import datetime as dt

from baton_core import utcnow
from baton_registry._db import Database
from baton_registry._leases import LeaseStore
from baton_registry._models import Method, Tool, WorkerLease
from baton_registry._store import MethodStore
from baton_registry._tools import ToolStore


async def test_writes_cancelled_at_any_moment_leave_the_write_lock_free(
        tmp_path, cancel_at_random):
    path = tmp_path / "registry.db"
    db = Database(f"sqlite+aiosqlite:///{path}")
    await db.open()
    methods, leases, tools = MethodStore(db), LeaseStore(db), ToolStore(db)
    names = [f"demo.m{i}" for i in range(10)]

    def lease() -> WorkerLease:
        return WorkerLease("worker-a", "127.0.0.1:1", utcnow() + dt.timedelta(seconds=30))

    async def writing() -> None:
        while True:
            for name in names:
                await methods.register(Method(name=name, description="d"), lease())
            await leases.heartbeat(lease(), [])
            await methods.update(names[0], lambda m: Method(
                name=m.name, description=f"{m.description}x"[-20:]))
            await tools.put(Tool(name="t", method=names[0], description="a tool"))
            await tools.delete("t")
            await leases.expire(utcnow() - dt.timedelta(seconds=60))

    try:
        await cancel_at_random(path, writing, trials=100, window=0.02)
        # And the store writes on at once.
        await asyncio.wait_for(methods.register(Method(name="demo.last"), lease()), 5)
        assert await leases.heartbeat(lease(), ["demo.last"]) == []
    finally:
        await db.close()
