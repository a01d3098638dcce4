"""The workflow engine's migrations build exactly the tables `_tables.py` declares."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from baton_core import make_engine, migrate
from baton_orchestrator.workflows import _constants as k
from baton_orchestrator.workflows._engine import MIGRATIONS
from baton_orchestrator.workflows._tables import metadata

pytestmark = pytest.mark.timeout(30)


async def test_migrated_schema_matches_the_table_definitions(database_url):
    engine = make_engine(database_url)
    try:
        await migrate(engine, MIGRATIONS, k.VERSION_TABLE)
        async with engine.connect() as conn:
            diff = await conn.run_sync(lambda sync: compare_metadata(
                MigrationContext.configure(sync, opts={"version_table": k.VERSION_TABLE}),
                metadata))
    finally:
        await engine.dispose()
    assert diff == []
