"""The Alembic migrations build exactly the tables `_tables.py` declares."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import baton_registry
from baton_registry._constants import VERSION_TABLE
from baton_registry._db import Database
from baton_registry._tables import metadata

pytestmark = pytest.mark.timeout(30)


def test_package_exports_only_the_app():
    assert baton_registry.__all__ == ["RegistryApp", "build_app"]


async def test_migrated_schema_matches_the_table_definitions(database_url):
    db = Database(database_url)
    await db.open()
    await db.open()  # opening twice is harmless
    try:
        async with db.engine.connect() as conn:
            diff = await conn.run_sync(lambda sync: compare_metadata(
                MigrationContext.configure(sync, opts={"version_table": VERSION_TABLE}),
                metadata))
    finally:
        await db.close()
        await db.close()
    assert diff == []


async def test_migrating_an_up_to_date_database_is_a_no_op(database_url):
    for _ in range(2):
        db = Database(database_url)
        await db.open()
        await db.close()
