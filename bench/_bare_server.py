"""What the benchmark's bare servers share: one generic handler served with
the gRPC process settings of Baton's servers (the GRPC_EXPERIMENTS they
inherit, the poller thread's nice value from BATON_GRPC_POLLER_NICE, see
baton_core._grpc_env), and a line on stdout once they listen. They run on
uvloop through `baton_core.run`, as Baton's servers do."""

from __future__ import annotations

import grpc

from baton_core._grpc_env import lower_poller_priority


async def serve(listen: str, handler: grpc.GenericRpcHandler) -> None:
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(listen)
    await server.start()
    lower_poller_priority()
    print("ready", flush=True)
    await server.wait_for_termination()
