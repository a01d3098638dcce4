"""The workflow writer's SQLite path: many rows of one INSERT go as multi-row
statements, chunked under SQLite's parameter limit, and count as executemany would."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3

import pytest
import sqlalchemy as sa

from baton_core import SQLITE_BUSY_TIMEOUT_MS
from baton_orchestrator.workflows import _sqlite_writer
from baton_orchestrator.workflows._sqlite_writer import SqliteWriter

metadata = sa.MetaData()
things = sa.Table("things", metadata,
                  sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                  sa.Column("key", sa.String(20), nullable=False, unique=True),
                  sa.Column("doc", sa.JSON(none_as_null=True), nullable=True))
INSERT = things.insert()
INSERT_NEW = sa.dialects.sqlite.insert(things).on_conflict_do_nothing()
UPDATE = (things.update().where(things.c.key == sa.bindparam("b_key"))
          .values(doc=sa.bindparam("doc")))


@pytest.fixture
def writer(tmp_path):
    path = str(tmp_path / "w.db")
    sa.create_engine(f"sqlite:///{path}").dispose()
    engine = sa.create_engine(f"sqlite:///{path}")
    metadata.create_all(engine)
    engine.dispose()
    counts: list[int] = []
    w = SqliteWriter(path, lambda count, expected: counts.append(count))
    yield w, path, counts
    w.close()


def _rows(path: str) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT key, doc FROM things ORDER BY id").fetchall()


def test_many_rows_span_several_statements_and_keep_their_order(writer, monkeypatch):
    w, path, counts = writer
    # Two columns per row and room for 7 parameters: two rows per statement (a power
    # of two), the rest alone.
    monkeypatch.setattr(_sqlite_writer, "_MAX_VARIABLES", 7)
    rows = [{"key": f"k{i}", "doc": {"n": i, "tags": ["a", None]}} for i in range(10)]
    w.run([(INSERT, rows, None)])
    assert counts == [10]
    assert _rows(path) == [(f"k{i}", f'{{"n": {i}, "tags": ["a", null]}}') for i in range(10)]
    compiled = next(iter(w._statements._by_shape.values()))
    assert compiled.chunk == 2


def test_values_are_stored_as_sqlalchemy_stores_them(tmp_path):
    """Only the columns with a bind processor (JSON, datetimes) are converted, in
    their place; a statement with one parameter, or none, works too."""
    path = str(tmp_path / "t.db")
    table = sa.Table("stamped", sa.MetaData(),
                     sa.Column("key", sa.String(20), primary_key=True),
                     sa.Column("at", sa.DateTime(timezone=True), nullable=True),
                     sa.Column("n", sa.Integer, nullable=True),
                     sa.Column("doc", sa.JSON(none_as_null=True), nullable=True))
    engine = sa.create_engine(f"sqlite:///{path}")
    table.metadata.create_all(engine)
    at = dt.datetime(2026, 11, 30, 21, 5, 7, 1234, tzinfo=dt.UTC)
    rows = [{"key": "a", "at": at, "n": 1, "doc": {"x": [1, None]}},
            {"key": "b", "at": None, "n": None, "doc": None}]
    w = SqliteWriter(path, lambda count, expected: None)
    try:
        w.run([(table.insert(), rows, None)])
        w.run([(table.delete().where(table.c.key == sa.bindparam("b_key")), {"b_key": "b"},
                None)])
        with engine.connect() as conn:
            stored = [tuple(r) for r in conn.execute(sa.select(table))]
            raw = conn.exec_driver_sql("SELECT at, doc FROM stamped").fetchall()
        w.run([(table.delete(), {}, None)])
        with engine.connect() as conn:
            left = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar()
    finally:
        w.close()
        engine.dispose()
    assert stored == [("a", at.replace(tzinfo=None), 1, {"x": [1, None]})]
    assert raw == [("2026-11-30 21:05:07.001234", '{"x": [1, null]}')]
    assert left == 0


def test_conflicting_rows_are_skipped_and_not_counted(writer):
    w, path, counts = writer
    w.run([(INSERT_NEW, [{"key": "a", "doc": None}, {"key": "b", "doc": None}], None)])
    w.run([(INSERT_NEW, [{"key": k, "doc": None} for k in ("a", "c", "b", "d")], None)])
    assert counts == [2, 2]
    assert [k for k, _ in _rows(path)] == ["a", "b", "c", "d"]


def test_a_failing_row_rolls_back_the_whole_transaction(writer):
    w, path, _ = writer
    w.run([(INSERT, [{"key": "a", "doc": None}], None)])
    with pytest.raises(sa.exc.IntegrityError):
        w.run([(INSERT, [{"key": "x", "doc": None}, {"key": "a", "doc": None}], None),
               (UPDATE, [{"b_key": "a", "doc": [1]}], None)])
    assert _rows(path) == [("a", None)]


def test_statements_that_are_not_plain_inserts_still_run_row_by_row(writer):
    w, path, counts = writer
    w.run([(INSERT, [{"key": k, "doc": None} for k in "abc"], None)])
    w.run([(UPDATE, [{"b_key": "a", "doc": {"v": 1}}, {"b_key": "c", "doc": [2]},
                     {"b_key": "zz", "doc": None}], None)])
    assert counts == [3, 2]
    assert _rows(path) == [("a", '{"v": 1}'), ("b", None), ("c", "[2]")]


def test_batches_of_any_size_prepare_only_a_few_statement_texts(writer):
    w, path, counts = writer
    total = 0
    for size in range(1, 300, 7):
        w.run([(INSERT, [{"key": f"s{total + i}", "doc": None} for i in range(size)], None)])
        total += size
    assert counts[-1] == size and len(_rows(path)) == total
    compiled = next(iter(w._statements._by_shape.values()))
    assert compiled.chunk == 16
    assert sorted(compiled._sql_for) == [2, 4, 8, 16]


def test_a_small_plan_runs_inline_and_a_large_one_is_left_to_the_thread(writer):
    w, path, counts = writer
    # The connection is opened on the thread (opening it may wait for a lock).
    assert w.try_run([(INSERT, [{"key": "a", "doc": None}], None)]) is False
    w._connect()
    assert w.try_run([(INSERT, [{"key": "a", "doc": {"x": 1}}], None)]) is True
    big = [{"key": f"b{i}", "doc": None} for i in range(_sqlite_writer.INLINE_ROWS + 1)]
    assert w.try_run([(INSERT, big, None)]) is False
    assert counts == [1]
    assert _rows(path) == [("a", '{"x": 1}')]
    # A caller may allow more rows inline (the audit log's lane does).
    assert w.try_run([(INSERT, big, None)], max_rows=len(big) - 1) is False
    assert w.try_run([(INSERT, big, None)], max_rows=len(big)) is True
    assert counts == [1, len(big)]


def test_an_inline_try_never_waits_for_a_write_lock_held_elsewhere(writer):
    w, path, counts = writer
    w._connect()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another connection holds SQLite's write lock
    try:
        assert w.try_run([(INSERT, [{"key": "a", "doc": None}], None)]) is False
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert counts == [] and _rows(path) == []
    # The connection is left as it was: the busy timeout is back, and the next try writes.
    assert w._connect().execute("PRAGMA busy_timeout").fetchone() == (SQLITE_BUSY_TIMEOUT_MS,)
    assert w.try_run([(INSERT, [{"key": "a", "doc": None}], None)]) is True
    assert _rows(path) == [("a", None)]


def test_an_inline_try_gives_way_while_the_thread_uses_the_connection(writer):
    w, path, _ = writer
    w._connect()
    with w._lock:  # as while `run` holds it on the writer's thread
        assert w.try_run([(INSERT, [{"key": "a", "doc": None}], None)]) is False
    assert _rows(path) == []


def test_a_failing_inline_plan_rolls_back_and_raises(writer):
    w, path, _ = writer
    w.run([(INSERT, [{"key": "a", "doc": None}], None)])
    with pytest.raises(sa.exc.IntegrityError):
        w.try_run([(INSERT, [{"key": "x", "doc": None}, {"key": "a", "doc": None}], None)])
    assert _rows(path) == [("a", None)]
    assert w.try_run([(INSERT, [{"key": "y", "doc": None}], None)]) is True


def test_commits_leave_the_wal_to_checkpoint(writer):
    w, path, _ = writer
    w._connect()
    for i in range(300):  # ~1,200 pages: past SQLite's automatic checkpoint at 1,000
        assert w.try_run([(INSERT, [{"key": f"k{i}", "doc": {"pad": "x" * 3000}}], None)])
    # No commit checkpointed: the rows are in the WAL, not yet in the database file.
    assert os.path.getsize(path) < 300 * 3000 < os.path.getsize(path + "-wal")
    with sqlite3.connect(path) as reader:
        assert reader.execute("SELECT count(*) FROM things").fetchone() == (300,)
    w.checkpoint()
    assert os.path.getsize(path) > 300 * 3000
    assert w.try_run([(INSERT, [{"key": "last", "doc": None}], None)])
