"""SQLite engines: a fixed pool of connections, a bounded page cache on each, and
settings that are checked, with a readable message, when a service starts."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys

import pytest
from sqlalchemy import event, text

from baton_core import SettingError, apply_sqlite_pragmas, make_engine
from baton_core import constants as c


@pytest.fixture
def clean_env(monkeypatch):
    for name in (c.ENV_SQLITE_POOL_SIZE, c.ENV_SQLITE_CACHE_KIB):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


async def test_a_sqlite_engine_queues_reads_on_its_fixed_pool_instead_of_opening_more(
        clean_env, tmp_path):
    clean_env.setenv(c.ENV_SQLITE_POOL_SIZE, "2")
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/db.sqlite")
    opened = []
    event.listen(engine.sync_engine, "connect", lambda conn, _: opened.append(conn))

    async def read(i: int) -> int:
        async with engine.connect() as conn:
            await asyncio.sleep(0.01)  # hold it, so that the reads overlap
            return (await conn.execute(text("SELECT :i"), {"i": i})).scalar()

    try:
        got = await asyncio.gather(*(read(i) for i in range(40)))
        assert got == list(range(40))  # every read answered, none refused
        # ...over two connections (each a thread under aiosqlite), none opened beyond
        assert len(opened) == 2
        assert engine.pool.size() == 2 and engine.pool.overflow() <= 0
    finally:
        await engine.dispose()


async def test_every_sqlite_connection_gets_the_bounded_page_cache(clean_env, tmp_path):
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/db.sqlite")
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA cache_size"))).scalar() == -256
            assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
    finally:
        await engine.dispose()
    # The workflow writer's own sqlite3 connection goes through the same pragmas.
    clean_env.setenv(c.ENV_SQLITE_CACHE_KIB, "1024")
    raw = sqlite3.connect(tmp_path / "db.sqlite")
    try:
        apply_sqlite_pragmas(raw)
        assert raw.execute("PRAGMA cache_size").fetchone()[0] == -1024
    finally:
        raw.close()


async def test_an_in_memory_sqlite_engine_keeps_its_single_connection(clean_env):
    engine = make_engine("sqlite+aiosqlite:///:memory:")
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (x INTEGER)"))
        async with engine.connect() as conn:  # the same database: one static connection
            assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar() == 0
    finally:
        await engine.dispose()


@pytest.mark.parametrize(("name", "value", "message"), [
    (c.ENV_SQLITE_POOL_SIZE, "0", "BATON_SQLITE_POOL_SIZE must be a whole number of at least 1"),
    (c.ENV_SQLITE_CACHE_KIB, "lots", "BATON_SQLITE_CACHE_KIB must be a whole number of at "
                                     "least 16, not 'lots'"),
])
def test_a_bad_sqlite_setting_is_refused_by_name(clean_env, tmp_path, name, value, message):
    clean_env.setenv(name, value)

    async def connect() -> None:
        engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/db.sqlite")
        try:
            async with engine.connect():
                pass
        finally:
            await engine.dispose()

    with pytest.raises(SettingError, match=message):
        asyncio.run(connect())


def test_a_bad_postgresql_pool_setting_is_refused_by_name(monkeypatch):
    monkeypatch.setenv(c.ENV_DB_POOL_SIZE, "ten")
    with pytest.raises(SettingError, match="BATON_DB_POOL_SIZE must be a whole number of "
                                           "at least 1, not 'ten'"):
        make_engine("postgresql+asyncpg://postgres@127.0.0.1:5432/test")


def test_baton_serve_names_a_bad_setting_in_one_line_and_exits_2(tmp_path):
    env = {**os.environ, c.ENV_DATA_DIR: str(tmp_path), c.ENV_AUTH: "off",
           c.ENV_LISTEN: "127.0.0.1:0", c.ENV_SQLITE_CACHE_KIB: "lots"}
    done = subprocess.run([sys.executable, "-m", "baton_cli", "serve", "registry"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "baton serve registry: BATON_SQLITE_CACHE_KIB must be a whole number of at least 16, "
        "not 'lots'")
    assert "Traceback" not in done.stderr and "╭" not in done.stderr


@pytest.mark.parametrize(("name", "value", "problem"), [
    ("BATON_MAX_ACTIVE_RUNS", "lots", "a whole number of at least 1, not 'lots'"),
    ("BATON_RUN_LEASE_SECONDS", "abc", "a number greater than 0, not 'abc'"),
    ("BATON_IDEMPOTENCY_WINDOW_SECONDS", "-5", "a number greater than 0, not '-5'"),
    ("BATON_LEASE_TTL_SECONDS", "soon", "a number greater than 0, not 'soon'"),
])
def test_the_orchestrator_refuses_a_bad_setting_before_it_touches_its_database(
        tmp_path, name, value, problem):
    env = {**os.environ, c.ENV_DATA_DIR: str(tmp_path), c.ENV_AUTH: "off",
           c.ENV_LISTEN: "127.0.0.1:0", name: value}
    env.pop(c.ENV_DATABASE_URL, None)
    done = subprocess.run([sys.executable, "-m", "baton_cli", "serve", "orchestrator"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"baton serve orchestrator: {name} must be {problem}"]
    assert list(tmp_path.iterdir()) == []  # no database made, nothing migrated


@pytest.mark.parametrize(("name", "value", "problem"), [
    ("BATON_SESSION_HISTORY_LIMIT", "lots", "a whole number of at least 1, not 'lots'"),
    ("BATON_SESSION_SWEEP_SECONDS", "often", "a number greater than 0, not 'often'"),
    ("BATON_SESSION_REFRESH_SECONDS", "-1", "a number greater than 0, not '-1'"),
    ("BATON_GRPC_EVENT_ENGINE", "maybe", "on or off, not 'maybe'"),
    ("BATON_METRICS_PORT", "x", "a whole number from 1 to 65535, not 'x'"),
    ("BATON_LOG_LEVEL", "LOUD", "one of DEBUG, INFO, WARNING, ERROR, CRITICAL, not 'LOUD'"),
])
def test_the_sessions_service_refuses_a_bad_setting_by_name(tmp_path, name, value, problem):
    env = {**os.environ, c.ENV_DATA_DIR: str(tmp_path), c.ENV_AUTH: "off",
           c.ENV_LISTEN: "127.0.0.1:0", name: value}
    env.pop(c.ENV_DATABASE_URL, None)
    done = subprocess.run([sys.executable, "-m", "baton_cli", "serve", "sessions"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1] == f"baton serve sessions: {name} must be {problem}"
    assert "Traceback" not in done.stderr


def test_a_key_file_a_service_cannot_read_is_named_in_one_line(tmp_path):
    missing = tmp_path / "no-such-secret"
    env = {**os.environ, c.ENV_DATA_DIR: str(tmp_path), c.ENV_LISTEN: "127.0.0.1:0",
           "BATON_AUTH": "on", "BATON_JWT_SECRET_FILE": str(missing)}
    env.pop(c.ENV_DATABASE_URL, None)
    done = subprocess.run([sys.executable, "-m", "baton_cli", "serve", "registry"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"baton serve registry: BATON_JWT_SECRET_FILE={missing}: cannot be read: "
        "No such file or directory"]
