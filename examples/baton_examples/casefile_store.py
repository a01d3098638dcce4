"""The example worker's own SQLite store of casefiles and notes.

Writes remember the caller's idempotency key in the same transaction as the
change, so a retried call finds the first result instead of writing twice.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from baton_core import FailedPrecondition, NotFound, new_id

_SCHEMA = """
CREATE TABLE IF NOT EXISTS casefiles (
    casefile_id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    note_count INTEGER NOT NULL DEFAULT 0,
    idempotency_key TEXT UNIQUE,
    create_time TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS notes (
    note_id TEXT PRIMARY KEY,
    casefile_id TEXT NOT NULL REFERENCES casefiles (casefile_id),
    seq INTEGER NOT NULL,
    text TEXT NOT NULL,
    idempotency_key TEXT UNIQUE,
    create_time TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS notes_by_casefile ON notes (casefile_id, seq);
"""


@dataclass(frozen=True)
class Note:
    note_id: str
    casefile_id: str
    seq: int
    text: str
    create_time: str


class CasefileStore:
    """Casefiles and their notes in one SQLite file; blocking work runs in a thread."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._db: sqlite3.Connection | None = None
        # One connection shared by the worker threads; the lock serialises them.
        self._lock = threading.Lock()

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = await asyncio.to_thread(self._connect)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA foreign_keys=ON")
        db.executescript(_SCHEMA)
        return db

    async def close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            await asyncio.to_thread(db.close)

    async def _run(self, fn, *args: Any) -> Any:
        if self._db is None:
            raise RuntimeError("casefile store is not open")
        return await asyncio.to_thread(self._locked, fn, *args)

    def _locked(self, fn, *args: Any) -> Any:
        with self._lock:
            db = self._db
            if db is None:  # closed while the call waited for the lock
                raise RuntimeError("casefile store is not open")
            db.execute("BEGIN IMMEDIATE")
            try:
                result = fn(db, *args)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return result

    async def create_casefile(self, title: str, description: str, idempotency_key: str) -> str:
        return await self._run(_create_casefile, title, description, idempotency_key or None)

    async def add_note(self, casefile_id: str, text: str, idempotency_key: str) -> Note:
        return await self._run(_add_note, casefile_id, text, idempotency_key or None)

    async def list_notes(self, casefile_id: str) -> list[Note]:
        return await self._run(_list_notes, casefile_id)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def _create_casefile(db: sqlite3.Connection, title: str, description: str,
                     key: str | None) -> str:
    if key is not None:
        row = db.execute("SELECT casefile_id FROM casefiles WHERE idempotency_key = ?",
                         (key,)).fetchone()
        if row is not None:
            return row[0]
    casefile_id = new_id("cf_")
    db.execute("INSERT INTO casefiles (casefile_id, title, description, idempotency_key, "
               "create_time) VALUES (?, ?, ?, ?, ?)",
               (casefile_id, title, description, key, _now()))
    return casefile_id


def _add_note(db: sqlite3.Connection, casefile_id: str, text: str, key: str | None) -> Note:
    if key is not None:
        row = db.execute("SELECT note_id, casefile_id, seq, text, create_time FROM notes "
                         "WHERE idempotency_key = ?", (key,)).fetchone()
        if row is not None:
            note = Note(*row)
            if note.casefile_id != casefile_id:
                raise FailedPrecondition(
                    "idempotency key was already used for a note of another casefile",
                    reason="IDEMPOTENCY_KEY_REUSED")
            return note
    row = db.execute("UPDATE casefiles SET note_count = note_count + 1 WHERE casefile_id = ? "
                     "RETURNING note_count", (casefile_id,)).fetchone()
    if row is None:
        raise NotFound(f"casefile {casefile_id!r} does not exist", reason="CASEFILE_NOT_FOUND",
                       metadata={"casefile_id": casefile_id})
    note = Note(new_id("note_"), casefile_id, row[0], text, _now())
    db.execute("INSERT INTO notes (note_id, casefile_id, seq, text, idempotency_key, "
               "create_time) VALUES (?, ?, ?, ?, ?, ?)",
               (note.note_id, casefile_id, note.seq, text, key, note.create_time))
    return note


def _list_notes(db: sqlite3.Connection, casefile_id: str) -> list[Note]:
    found = db.execute("SELECT 1 FROM casefiles WHERE casefile_id = ?", (casefile_id,))
    if found.fetchone() is None:
        raise NotFound(f"casefile {casefile_id!r} does not exist", reason="CASEFILE_NOT_FOUND",
                       metadata={"casefile_id": casefile_id})
    rows = db.execute("SELECT note_id, casefile_id, seq, text, create_time FROM notes "
                      "WHERE casefile_id = ? ORDER BY seq", (casefile_id,)).fetchall()
    return [Note(*row) for row in rows]
