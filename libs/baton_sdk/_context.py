"""InvocationContext: on whose behalf, for which run, and until when a method runs."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from baton.provider.v1 import provider_pb2
from baton_core import dict_to_struct, struct_to_dict


@dataclass(frozen=True)
class InvocationContext:
    """What a method may know about the call that runs it.

    Attributes:
        method: Dotted name of the method being invoked.
        version: Version of the method being invoked.
        session_id: The session the call belongs to, or "".
        run_id: The workflow run the call belongs to, or "".
        step_id: The step of that run, or "".
        attempt: The attempt number, starting at 1.
        idempotency_key: Stable across retries of the same logical call; a
            method with side effects uses it to make a retry harmless.
        actor: The authenticated caller on whose behalf the call is made.
        deadline: `time.monotonic()` value at which the call's deadline
            passes, or None when the call has none.
        hook_context: Values the orchestrator's pre-hooks added for this call.
    """

    method: str = ""
    version: str = ""
    session_id: str = ""
    run_id: str = ""
    step_id: str = ""
    attempt: int = 1
    idempotency_key: str = ""
    actor: str = ""
    deadline: float | None = None
    hook_context: dict[str, Any] = field(default_factory=dict)

    def time_remaining(self) -> float | None:
        """Seconds left before the deadline (never negative), or None without one."""
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - time.monotonic())

    @classmethod
    def from_proto(cls, message: provider_pb2.InvocationContext, *, method: str = "",
                   version: str = "", timeout: float | None = None) -> InvocationContext:
        return cls(
            method=method,
            version=version,
            session_id=message.session_id,
            run_id=message.run_id,
            step_id=message.step_id,
            attempt=message.attempt or 1,
            idempotency_key=message.idempotency_key,
            actor=message.actor,
            deadline=None if timeout is None else time.monotonic() + timeout,
            hook_context=struct_to_dict(message.hook_context),
        )

    def to_proto(self) -> provider_pb2.InvocationContext:
        return provider_pb2.InvocationContext(
            session_id=self.session_id, run_id=self.run_id, step_id=self.step_id,
            attempt=self.attempt, idempotency_key=self.idempotency_key, actor=self.actor,
            hook_context=dict_to_struct(self.hook_context) if self.hook_context else None)
