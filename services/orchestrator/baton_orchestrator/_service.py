"""The Orchestrator servicer: protobuf in, dataclasses inside."""

from __future__ import annotations

import grpc

from baton.orchestrator.v1 import orchestrator_pb2, orchestrator_pb2_grpc
from baton_core import (
    current_identity,
    dict_to_struct,
    duration_to_seconds,
    require_json_numbers,
    seconds_to_duration,
    struct_to_dict,
)

from ._directives import check_directives
from ._dispatch import DispatchCall, Dispatcher, DispatchResult


def actor_of(context: grpc.aio.ServicerContext) -> str:
    """The caller on whose behalf the RPC runs, as the auth interceptor established it
    (with auth off: the `x-baton-actor` it names, else anonymous)."""
    return current_identity().subject


def dispatch_call(request: orchestrator_pb2.DispatchRequest,
                  context: grpc.aio.ServicerContext) -> DispatchCall:
    directives = request.directives
    check_directives(directives)
    params = struct_to_dict(request.params)
    require_json_numbers(params, "params")  # a Struct carries NaN; JSON and workers do not
    who = current_identity()
    return DispatchCall(
        operation=request.operation,
        params=params,
        params_struct=request.params,
        session_id=request.session_id,
        skip_hooks=tuple(directives.skip_hooks),
        timeout=duration_to_seconds(directives.timeout) or None,
        dry_run=directives.dry_run,
        idempotency_key=directives.idempotency_key,
        actor=who.subject,
        roles=who.roles,
        via=who.via,
        replay=bool(directives.idempotency_key),
        caller_remaining=context.time_remaining(),
    )


def dispatch_response(out: DispatchResult) -> orchestrator_pb2.DispatchResponse:
    return orchestrator_pb2.DispatchResponse(
        result=out.result_struct if out.result_struct is not None
        else dict_to_struct(out.result),
        metadata=orchestrator_pb2.DispatchMetadata(
            execution_id=out.execution_id,
            total_duration=seconds_to_duration(out.total_seconds),
            worker_duration=seconds_to_duration(out.worker_seconds),
            attempts=out.attempts, worker_address=out.worker_address,
            worker_id=out.worker_id, method_version=out.method_version,
            hooks_run=out.hooks_run, policy=out.policy, dry_run=out.dry_run,
            replayed=out.replayed))


class OrchestratorServicer(orchestrator_pb2_grpc.OrchestratorServicer):
    def __init__(self, dispatcher: Dispatcher) -> None:
        self._dispatcher = dispatcher

    async def Dispatch(self, request, context):
        return dispatch_response(await self._dispatcher.dispatch(dispatch_call(request, context)))
