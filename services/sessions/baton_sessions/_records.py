"""Values the service passes between SQL, Redis and gRPC.

Times are integer microseconds since the epoch (UTC): exact in SQL, Redis and
protobuf alike, and cheap to compare.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

ACTIVE = "ACTIVE"
CLOSED = "CLOSED"
EXPIRED = "EXPIRED"

SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
UNSPECIFIED = "UNSPECIFIED"

CREATED_EVENT = "CREATED"
LINKED_EVENT = "LINKED"
EXECUTION_TRACKED_EVENT = "EXECUTION_TRACKED"
CONTEXT_CHANGED_EVENT = "CONTEXT_CHANGED"
CLOSED_EVENT = "CLOSED"
EXPIRED_EVENT = "EXPIRED"


def now_us() -> int:
    return time.time_ns() // 1000


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """One session as SQL stores it.

    `version` is the sequence of the session's latest event: it grows with
    every change, which lets Redis refuse a write older than what it holds.
    """

    session_id: str
    user_id: str
    casefile_id: str
    status: str
    labels: dict[str, str]
    create_time: int
    last_activity_time: int
    end_time: int | None
    execution_count: int
    context: dict[str, Any]
    etag: str
    version: int


@dataclass(frozen=True, slots=True)
class HotSession:
    """A session record read from Redis, with what Redis knows beyond SQL.

    Attributes:
        record: The record, its last_activity_time being Redis's view.
        sql_activity_time: The last_activity_time SQL holds.
        refreshed_time: When the record was last written from SQL.
    """

    record: SessionRecord
    sql_activity_time: int
    refreshed_time: int


@dataclass(frozen=True, slots=True)
class ExecutionRecord:
    """One tracked execution; `seq` is its commit order in SQL (0 before insert)."""

    execution_id: str
    session_id: str
    operation: str
    status: str
    duration_ns: int
    error: str
    run_id: str
    step_id: str
    actor: str
    create_time: int
    result: dict[str, Any] = field(default_factory=dict)
    seq: int = 0


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One entry of a session's event log (the outbox)."""

    session_id: str
    sequence: int
    type: str
    data: dict[str, Any]
    create_time: int
