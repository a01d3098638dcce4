"""A bare grpc.aio echo server: the baseline one gRPC hop is compared against.

It runs with the same gRPC process settings as Baton's services (see
`_bare_server`), which speed a bare echo as much as they speed Dispatch.
"""

from __future__ import annotations

import sys

import grpc
from _bare_server import serve

from baton_core import run


async def echo(request: bytes, context) -> bytes:
    return request


if __name__ == "__main__":
    run(lambda: serve(sys.argv[1], grpc.method_handlers_generic_handler(
        "bench.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(echo)})))
