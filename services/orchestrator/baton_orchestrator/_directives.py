"""The checks of `orchestrator.v1.Directives` that Dispatch and StartRun share."""

from __future__ import annotations

from baton.orchestrator.v1 import orchestrator_pb2
from baton_core import InvalidArgument, bounded, duration_problems

# Longest idempotency key, request_id and workflow name (the columns that keep them).
MAX_KEY_CHARS = 255


def check_directives(message: orchestrator_pb2.Directives) -> None:
    """INVALID_ARGUMENT for a timeout that is no valid Duration, or an idempotency key
    longer than MAX_KEY_CHARS."""
    if bad := duration_problems(message.timeout, "directives.timeout"):
        raise InvalidArgument("directives.timeout is not a valid duration", violations=bad)
    bounded(message.idempotency_key, "directives.idempotency_key", MAX_KEY_CHARS)
