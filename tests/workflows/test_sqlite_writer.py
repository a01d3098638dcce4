"""The workflow writer's SQLite path: many rows of one INSERT go as multi-row
statements, chunked under SQLite's parameter limit, and count as executemany would."""

from __future__ import annotations

import sqlite3

import pytest
import sqlalchemy as sa

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
    compiled = next(iter(w._compiled.values()))
    assert compiled.chunk == 2


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
    compiled = next(iter(w._compiled.values()))
    assert compiled.chunk == 16
    assert sorted(compiled._sql_for) == [2, 4, 8, 16]
