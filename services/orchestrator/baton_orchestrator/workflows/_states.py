"""The one state machine of runs and steps.

Every status change goes through `advance_run` or `advance_step`; a change
that is not in the tables is refused with FAILED_PRECONDITION and the reason
INVALID_TRANSITION.
"""

from __future__ import annotations

from baton_core import FailedPrecondition

PENDING, RUNNING, SUCCEEDED, FAILED = "PENDING", "RUNNING", "SUCCEEDED", "FAILED"
CANCELLED, SKIPPED, PARTIAL = "CANCELLED", "SKIPPED", "PARTIAL"

RUN_STATUSES = (PENDING, RUNNING, SUCCEEDED, FAILED, CANCELLED, PARTIAL)
STEP_STATUSES = (PENDING, RUNNING, SUCCEEDED, FAILED, CANCELLED, SKIPPED)

RUN_TRANSITIONS: dict[str, frozenset[str]] = {
    PENDING: frozenset({RUNNING, CANCELLED}),
    RUNNING: frozenset({RUNNING, SUCCEEDED, FAILED, PARTIAL, CANCELLED}),
    SUCCEEDED: frozenset(),
    # RetryRun puts an ended, unsuccessful run back in the queue.
    FAILED: frozenset({PENDING}),
    PARTIAL: frozenset({PENDING}),
    CANCELLED: frozenset({PENDING}),
}

STEP_TRANSITIONS: dict[str, frozenset[str]] = {
    PENDING: frozenset({RUNNING, SKIPPED, CANCELLED, FAILED}),
    # RUNNING → RUNNING is a new attempt (a retry, or a resume after a crash).
    RUNNING: frozenset({RUNNING, SUCCEEDED, FAILED, CANCELLED}),
    SUCCEEDED: frozenset(),
    FAILED: frozenset({PENDING}),
    CANCELLED: frozenset({PENDING}),
    SKIPPED: frozenset({PENDING}),
}

RUN_TERMINAL = frozenset({SUCCEEDED, FAILED, CANCELLED, PARTIAL})
RUN_RETRYABLE = frozenset({FAILED, PARTIAL, CANCELLED})
RUN_ACTIVE = frozenset({PENDING, RUNNING})
STEP_TERMINAL = frozenset({SUCCEEDED, FAILED, CANCELLED, SKIPPED})
STEP_UNSUCCESSFUL = frozenset({FAILED, CANCELLED, SKIPPED})


class InvalidTransition(FailedPrecondition):
    default_reason = "INVALID_TRANSITION"


def _check(kind: str, table: dict[str, frozenset[str]], current: str, new: str,
           subject: str) -> None:
    if new not in table.get(current, frozenset()):
        raise InvalidTransition(
            f"{kind} {subject} cannot go from {current} to {new}",
            metadata={kind: subject, "from": current, "to": new})


# What a refused CancelRun (to CANCELLED) or RetryRun (to PENDING) tells its caller.
_RUN_REFUSALS = {
    CANCELLED: "only a PENDING or RUNNING run can be cancelled",
    PENDING: "only a FAILED, PARTIAL or CANCELLED run can be retried",
}


def advance_run(run_id: str, current: str, new: str) -> str:
    """Returns `new` when a run may go from `current` to it; raises otherwise."""
    if new not in RUN_TRANSITIONS.get(current, frozenset()) and new in _RUN_REFUSALS:
        raise InvalidTransition(f"run {run_id} is {current}: {_RUN_REFUSALS[new]}",
                                metadata={"run": run_id, "from": current, "to": new})
    _check("run", RUN_TRANSITIONS, current, new, run_id)
    return new


def advance_step(step_id: str, current: str, new: str) -> str:
    """Returns `new` when a step may go from `current` to it; raises otherwise."""
    _check("step", STEP_TRANSITIONS, current, new, step_id)
    return new
