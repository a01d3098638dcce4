"""A service's store id: a random name for its SQL database, made once by a
migration, that scopes the service's keys in Redis.

Redis holds copies and shared counters of what one database holds. With the
store id in every key, replicas of one database share their keys, while two
databases behind one Redis (two deployments, or a data directory made afresh
while Redis kept the old one's keys) never meet.
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

KEY_PREFIX = "baton:"
_NAME = "store_id"


def _columns() -> list[sa.Column]:
    return [sa.Column("name", sa.String(64), primary_key=True),
            sa.Column("value", sa.String(256), nullable=False)]


def store_meta_table(name: str, metadata: sa.MetaData) -> sa.Table:
    """The one-row table (name, value) holding ("store_id", <16 hex digits>)."""
    return sa.Table(name, metadata, *_columns())


def create_store_meta(name: str) -> None:
    """For a migration's upgrade(): creates the table and its store id. What it makes
    is part of migration history, so it must not change."""
    from alembic import op

    table = op.create_table(name, *_columns())
    op.bulk_insert(table, [{"name": _NAME, "value": uuid.uuid4().hex[:16]}])


async def read_store_id(engine: AsyncEngine, table: sa.Table) -> str:
    """The store id of the (migrated) database."""
    async with engine.connect() as conn:
        return (await conn.execute(
            sa.select(table.c.value).where(table.c.name == _NAME))).scalar_one()


def key_prefix(store_id: str) -> str:
    """`baton:<store id>:`, the start of every Redis key and channel of the store."""
    if not store_id or any(ch in store_id for ch in ":{}"):
        raise ValueError(f"unusable store id {store_id!r}")
    return f"{KEY_PREFIX}{store_id}:"
