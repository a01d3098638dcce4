"""A tiny external hook (`baton.hook.v1.Hook`) for the tests, served in-process.

Its behaviour is set per test: allow (optionally adding context), reject with
either status, fail with an error, sleep past its timeout, or answer a decision
the contract does not have. Every call is
appended to a shared journal, so tests can check the order hooks ran in.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from baton.hook.v1 import hook_pb2, hook_pb2_grpc
from baton_core import GrpcServer, Service, Unavailable, dict_to_struct, struct_to_dict

_RESPONSE = hook_pb2.BeforeDispatchResponse


@dataclass
class Behaviour:
    reject: str = ""  # "", "PERMISSION_DENIED" or "FAILED_PRECONDITION"
    reason: str = ""
    fail: bool = False
    sleep: float = 0.0
    context: dict = field(default_factory=dict)
    decision: int = 0  # when set, the raw decision answered (garbage, for instance)


class RecordingHook(hook_pb2_grpc.HookServicer):
    def __init__(self, name: str, journal: list, behaviour: Behaviour) -> None:
        self.name = name
        self.journal = journal
        self.behaviour = behaviour
        self.seen: list = []

    async def _act(self) -> None:
        if self.behaviour.sleep:
            await asyncio.sleep(self.behaviour.sleep)
        if self.behaviour.fail:
            raise Unavailable(f"hook {self.name} is broken")

    async def BeforeDispatch(self, request, context):  # noqa: N802
        self.journal.append((self.name, "pre", request.call.operation))
        self.seen.append(request)
        await self._act()
        if self.behaviour.reject:
            rejection = (_RESPONSE.REJECTION_FAILED_PRECONDITION
                         if self.behaviour.reject == "FAILED_PRECONDITION"
                         else _RESPONSE.REJECTION_PERMISSION_DENIED)
            return _RESPONSE(decision=_RESPONSE.DECISION_REJECT, rejection=rejection,
                             reason=self.behaviour.reason)
        added = {**struct_to_dict(request.call.context), **self.behaviour.context}
        return _RESPONSE(decision=self.behaviour.decision or _RESPONSE.DECISION_ALLOW,
                         context=dict_to_struct(added))

    async def AfterDispatch(self, request, context):  # noqa: N802
        self.journal.append((self.name, "post", request.call.operation))
        self.seen.append(request)
        await self._act()
        return hook_pb2.AfterDispatchResponse()


async def serve_hook(name: str, journal: list, behaviour: Behaviour) -> tuple[GrpcServer,
                                                                                RecordingHook]:
    hook = RecordingHook(name, journal, behaviour)
    server = GrpcServer("127.0.0.1:0", [Service("baton.hook.v1.Hook", hook,
                                                hook_pb2_grpc.add_HookServicer_to_server)])
    await server.start()
    return server, hook
