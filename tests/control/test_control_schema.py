"""The control plane's migrations build exactly the tables its code uses."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from baton_core import make_engine
from baton_orchestrator import _control_tables
from baton_orchestrator._control_store import ControlStore


async def test_migrated_control_schema_matches_the_tables(database_url):
    engine = make_engine(database_url)
    try:
        for _ in range(2):  # a second replica finds the schema at head
            await ControlStore(engine).migrate()
        async with engine.connect() as conn:
            diff = await conn.run_sync(lambda sync: compare_metadata(
                MigrationContext.configure(sync, opts={"include_name": _ours}),
                _control_tables.metadata))
    finally:
        await engine.dispose()
    assert diff == []


def _ours(name, kind, _parent) -> bool:
    return kind != "table" or name.startswith("ctl_")
