"""A lease renewal cancelled midway (a graceful stop cancels the lease loops)
leaves no transaction behind: on SQLite, one cut in half by the cancellation
could leave its connection holding the write lock, and every later write of the
replica then waited out the busy timeout (the stop hung for 30 s)."""

from __future__ import annotations

import sqlalchemy as sa

from baton_core import make_engine, migrate
from baton_orchestrator.workflows import _constants as k
from baton_orchestrator.workflows import _tables as t
from baton_orchestrator.workflows._engine import MIGRATIONS
from baton_orchestrator.workflows._runs import RunStore

from .test_fence import _run_row


async def test_a_renewal_cancelled_at_any_moment_leaves_the_write_lock_free(
        tmp_path, cancel_at_random):
    path = tmp_path / "orchestrator.db"
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    await migrate(engine, MIGRATIONS, k.VERSION_TABLE)
    async with engine.begin() as conn:
        await conn.execute(sa.insert(t.runs), [_run_row(f"run_{i}", "replica-a")
                                                for i in range(20)])
    runs = RunStore(engine)

    async def renewing() -> None:
        while True:
            await runs.renew("replica-a", 30.0)

    try:
        # Without the fix, about one cancelled renewal in ten left the lock held.
        await cancel_at_random(path, renewing, trials=150, window=0.01)
        owned, _ = await runs.renew("replica-a", 30.0)
        assert len(owned) == 20
    finally:
        await engine.dispose()
