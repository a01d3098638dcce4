"""A zero-logic relay: the floor for Dispatch's two hops on this machine.

It serves Orchestrator/Dispatch with none of Baton's work (no interceptors,
auth, policy, hooks, audit, metrics, validation or result metadata): each
request's params go to the example worker over the same `OpenChannel` worker
channel the orchestrator uses, and the worker's result comes straight back.
Same gRPC process settings as the echo server (see `_bare_server`).

    python bench/relay_server.py LISTEN WORKER_ADDRESS [TOKEN]
"""

from __future__ import annotations

import sys

import grpc
from _bare_server import serve

from baton.orchestrator.v1 import orchestrator_pb2
from baton.provider.v1 import provider_pb2, provider_pb2_grpc
from baton_core import run
from baton_orchestrator._worker_channel import WorkerChannel


async def main(listen: str, worker: str, token: str) -> None:
    metadata = (("authorization", f"Bearer {token}"),) if token else ()
    channel = grpc.aio.insecure_channel(worker)
    to_worker = WorkerChannel(worker, provider_pb2_grpc.MethodProviderStub(channel),
                              lambda: metadata)

    async def dispatch(request: orchestrator_pb2.DispatchRequest,
                       context) -> orchestrator_pb2.DispatchResponse:
        invocation = provider_pb2.Invocation()
        invocation.request.method = request.operation
        invocation.request.params.CopyFrom(request.params)
        reply = await to_worker.send(invocation, context.time_remaining() or 30.0)
        response = orchestrator_pb2.DispatchResponse()
        response.result.CopyFrom(reply.result)
        return response

    await serve(listen, grpc.method_handlers_generic_handler(
        "baton.orchestrator.v1.Orchestrator", {"Dispatch": grpc.unary_unary_rpc_method_handler(
            dispatch, request_deserializer=orchestrator_pb2.DispatchRequest.FromString,
            response_serializer=orchestrator_pb2.DispatchResponse.SerializeToString)}))


if __name__ == "__main__":
    listen, worker, token = [*sys.argv[1:], ""][:3]
    run(lambda: main(listen, worker, token))
