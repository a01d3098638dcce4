"""The migrations build exactly the tables the code uses; keys suit Redis Cluster."""

from __future__ import annotations

import pytest
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
    keys = _keys.Keys("0123abcd")
    names = [keys.session(sid), keys.history(sid), keys.channel(sid)]
    assert {_hash_tag(key) for key in names} == {sid}
    assert all(key.startswith("baton:0123abcd:") for key in names)
    assert keys.session_id_of_channel(keys.channel(sid)) == sid


def test_index_keys_of_different_pairs_never_collide():
    keys = _keys.Keys("0123abcd")
    assert keys.index("a:b", "c") != keys.index("a", "b:c")
    assert keys.index("u", "") != keys.index("u", "x")


def test_keys_of_two_stores_never_meet():
    one, two = _keys.Keys("0123abcd"), _keys.Keys("4567ef01")
    assert one.index("u", "c") != two.index("u", "c")
    assert one.session("s") != two.session("s") and one.channel("s") != two.channel("s")
    for bad in ("", "a:b", "a{b}"):
        with pytest.raises(ValueError):
            _keys.Keys(bad)
