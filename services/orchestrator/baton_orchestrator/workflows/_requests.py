"""The request_id of CancelRun and RetryRun: recorded with the change it made.

A caller whose CancelRun or RetryRun landed but whose answer was lost (an
UNAVAILABLE) calls again with the same request_id. The id is written in the
transaction that flags the run for cancellation or resets it for its retry
(wf_run_requests), so the repeat finds it on any replica and after any
restart, and is answered with the run as it is now instead of being refused
as an invalid transition. Ids are global, like StartRun's: one that was used
by another caller, on another run or for the other operation is refused
(REQUEST_ID_REUSED) and nothing is written. A record is kept as long as its
run; a call that was refused records nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from baton_core import FailedPrecondition, utcnow

from . import _tables as t

CANCEL, RETRY = "CANCEL", "RETRY"


@dataclass(frozen=True)
class RunRequest:
    """One CancelRun or RetryRun that carried a request_id."""

    request_id: str
    run_id: str
    operation: str  # CANCEL or RETRY
    actor: str

    def row(self) -> dict[str, Any]:
        return {"request_id": self.request_id, "run_id": self.run_id,
                "operation": self.operation, "actor": self.actor, "create_time": utcnow()}


async def applied(conn: AsyncConnection, request: RunRequest) -> bool:
    """Whether `request` was applied already; False when its id was never used.

    FAILED_PRECONDITION (REQUEST_ID_REUSED) when the id did something else.
    """
    q = t.run_requests
    row = (await conn.execute(select(q.c.run_id, q.c.operation, q.c.actor)
                              .where(q.c.request_id == request.request_id))).first()
    if row is None:
        return False
    if (row.run_id, row.operation, row.actor) != (request.run_id, request.operation,
                                                  request.actor):
        # Never say what the id did: it may have been another caller's.
        raise FailedPrecondition(
            "request_id was already used by another caller, on another run or for "
            "another operation; use a new one", reason="REQUEST_ID_REUSED",
            metadata={"field": "request_id"})
    return True
