"""The migrations build exactly the tables the code uses; keys suit Redis Cluster."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from baton_core import make_engine
from baton_sessions import _keys, _tables
from baton_sessions._sql import Database


async def test_migrated_schema_matches_the_tables(database_url):
    for _ in range(2):  # a second replica finds the schema at head
        db = Database(database_url)
        await db.start()
        await db.stop()
    engine = make_engine(database_url)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(lambda sync: compare_metadata(
                MigrationContext.configure(sync, opts={"include_name": _ours}),
                _tables.metadata))
    finally:
        await engine.dispose()
    assert diff == []


def _ours(name, kind, _parent) -> bool:
    return kind != "table" or name.startswith("sessions_")


def _hash_tag(key: str) -> str:
    start = key.index("{")
    return key[start + 1:key.index("}", start)]


def test_keys_of_one_session_share_a_hash_tag():
    sid = "01a2f0c0ffee"
    keys = [_keys.session_key(sid), _keys.history_key(sid), _keys.events_channel(sid)]
    assert {_hash_tag(key) for key in keys} == {sid}
    assert all(key.startswith(_keys.PREFIX) for key in keys)
    assert _keys.session_id_of_channel(_keys.events_channel(sid)) == sid


def test_index_keys_of_different_pairs_never_collide():
    assert _keys.index_key("a:b", "c") != _keys.index_key("a", "b:c")
    assert _keys.index_key("u", "") != _keys.index_key("u", "x")
