"""On SQLite the audit log writes through the workflow writer's connection (its
lane): batches of up to LANE_INLINE_ROWS records run inline on the event loop,
larger ones in parts, and nothing is lost either way."""

from __future__ import annotations

import sqlalchemy as sa

from baton_core import AuditEntry, make_engine, migrate
from baton_orchestrator import _constants as ck
from baton_orchestrator._audit_log import AuditLog
from baton_orchestrator._control_store import MIGRATIONS as CONTROL_MIGRATIONS
from baton_orchestrator._control_tables import audit
from baton_orchestrator.workflows import _constants as k
from baton_orchestrator.workflows._engine import MIGRATIONS
from baton_orchestrator.workflows._sqlite_writer import LANE_INLINE_ROWS
from baton_orchestrator.workflows._writer import Writer


def _entry(i: int) -> AuditEntry:
    return AuditEntry(actor="lane-user", action="dispatch", entity_type="operation",
                      entity="demo.echo", changes={"n": i}, roles=("user",),
                      service="orchestrator")


async def test_audit_batches_run_inline_in_parts_and_all_are_stored(tmp_path):
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'orchestrator.db'}")
    await migrate(engine, MIGRATIONS, k.VERSION_TABLE)
    await migrate(engine, CONTROL_MIGRATIONS, ck.CONTROL_VERSION_TABLE)
    writer = Writer(engine, "replica-a")
    await writer.start()
    log = AuditLog()
    log.attach(engine)
    log.route_sqlite_writes(writer.sqlite_lane)
    on_thread: list[int] = []
    run_on_thread = writer._sqlite.run

    def counted(plan):
        on_thread.append(sum(len(params) for _, params, _ in plan))
        run_on_thread(plan)

    writer._sqlite.run = counted
    try:
        writer._sqlite._connect()  # as after the writer's first commit
        count = 2 * LANE_INLINE_ROWS + 7
        for i in range(count):
            log.record(_entry(i))
        await log.flush()
    finally:
        await log.stop()
        await writer.stop()
    async with engine.connect() as conn:
        stored = [row.changes["n"] for row in await conn.execute(
            sa.select(audit.c.changes).order_by(audit.c.id))]
    await engine.dispose()
    assert stored == list(range(count))
    assert on_thread == []  # three inline transactions, none on the writer's thread
