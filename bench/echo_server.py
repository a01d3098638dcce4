"""A bare grpc.aio echo server: the baseline one gRPC hop is compared against.

It runs with the same gRPC process settings as Baton's services: the
GRPC_EXPERIMENTS it inherits, and its poller thread's nice value
(BATON_GRPC_POLLER_NICE, see baton_core._grpc_env), which speeds a bare echo
as much as it speeds Dispatch.
"""

from __future__ import annotations

import asyncio
import sys

import grpc

from baton_core._grpc_env import lower_poller_priority


async def main(listen: str) -> None:
    async def echo(request: bytes, context) -> bytes:
        return request

    handler = grpc.method_handlers_generic_handler(
        "bench.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(echo)})
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(listen)
    await server.start()
    lower_poller_priority()
    print("ready", flush=True)
    await server.wait_for_termination()


if __name__ == "__main__":
    try:
        import uvloop
        uvloop.run(main(sys.argv[1]))
    except ImportError:
        asyncio.run(main(sys.argv[1]))
