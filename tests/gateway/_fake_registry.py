"""A fake registry that answers what the test asks, and a real Envoy in front of it.

Shared by the gateway suites that pin what Envoy does independently of the
services (test_gateway, test_gateway_replies).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status  # type: ignore[import-untyped]

from baton.registry.v1 import registry_pb2, registry_pb2_grpc
from baton_cli._gateway import Gateway, GatewaySettings, build_descriptor
from baton_core import free_port
from baton_core._server import SERVER_OPTIONS

# The challenge the fake sends with `challenge.invalid` (RFC 6750 3.1).
INVALID_TOKEN_CHALLENGE = 'Bearer error="invalid_token"'


class FakeRegistry(registry_pb2_grpc.MethodRegistryServicer):
    """GetMethod fails with the code named by `fail.<code>`; records metadata.

    `challenge.invalid` fails with UNAUTHENTICATED and its own www-authenticate;
    `large.N` answers with a description of N bytes. RegisterMethod takes any
    method and records the size of each request message it got.
    """

    def __init__(self) -> None:
        self.metadata: list[dict[str, str]] = []
        self.registered: list[int] = []  # RegisterMethod request sizes, in bytes
        self.held = 0
        self.all_held = asyncio.Event()
        self.held_in_vain = 0  # `hold.N` calls that waited 10 s for N in flight

    async def GetMethod(self, request, context):
        self.metadata.append({k: v for k, v in context.invocation_metadata()
                              if isinstance(v, str)})
        if request.name.startswith("hold."):  # answers once `hold.N` calls are in flight
            self.held += 1
            if self.held >= int(request.name.removeprefix("hold.")):
                self.all_held.set()
            try:
                await asyncio.wait_for(self.all_held.wait(), 10)
            except TimeoutError:
                self.held_in_vain += 1
        if request.name.startswith("large."):
            return registry_pb2.GetMethodResponse(method=registry_pb2.Method(
                name=request.name, description="x" * int(request.name.removeprefix("large."))))
        if request.name == "challenge.invalid":
            context.set_trailing_metadata((("www-authenticate", INVALID_TOKEN_CHALLENGE),))
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "fake invalid token")
        if request.name.startswith("fail."):
            code = grpc.StatusCode[request.name.removeprefix("fail.").upper()]
            details = [error_details_pb2.ErrorInfo(reason="FAKE", domain="baton.dev")]
            if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
                details.append(error_details_pb2.RetryInfo(
                    retry_delay=duration_pb2.Duration(seconds=2)))
            packed = []
            for detail in details:
                packed.append(any_pb2.Any())
                packed[-1].Pack(detail)
            await context.abort_with_status(rpc_status.to_status(status_pb2.Status(
                code=code.value[0], message=f"fake {code.name}", details=packed)))
        return registry_pb2.GetMethodResponse(
            method=registry_pb2.Method(name=request.name, version="1.0.0",
                                       default_timeout=duration_pb2.Duration(seconds=5)))

    async def RegisterMethod(self, request, context):
        self.registered.append(request.ByteSize())
        return registry_pb2.RegisterMethodResponse(
            method=registry_pb2.Method(name=request.method.name), created=True)

    async def WatchMethods(self, request, context):
        for name in ("a.one", "a.two", "a.three"):
            yield registry_pb2.WatchMethodsResponse(method=registry_pb2.Method(name=name))
            await asyncio.sleep(0.05)


async def start_gateway(workdir, registry: str, template=None) -> Gateway:
    """A real Envoy in front of `registry`; the other services are down."""
    descriptor = await asyncio.to_thread(build_descriptor, workdir / "descriptor.binpb")
    nobody = f"127.0.0.1:{free_port()}"
    gw = Gateway(GatewaySettings(
        listen=f"127.0.0.1:{free_port()}",
        upstreams={"registry": registry, "orchestrator": nobody, "sessions": nobody},
        descriptor=str(descriptor)), workdir, workdir / "envoy.log", template)
    await asyncio.to_thread(gw.start)
    return gw


@asynccontextmanager
async def not_http2() -> AsyncIterator[str]:
    """A server that answers every connection with bytes that are not HTTP/2:
    "127.0.0.1:port", for an upstream Envoy cannot read."""
    open_connections: set[asyncio.StreamWriter] = set()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        open_connections.add(writer)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n" * 4)
        try:
            await writer.drain()
            await reader.read()  # until Envoy gives up on the connection
        except ConnectionError:
            pass
        finally:
            open_connections.discard(writer)
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    try:
        yield f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        for writer in list(open_connections):
            writer.close()
        await server.wait_closed()


@asynccontextmanager
async def fake_registry(options=SERVER_OPTIONS) -> AsyncIterator[tuple[FakeRegistry, str]]:
    """A FakeRegistry served on a free port: (servicer, "127.0.0.1:port")."""
    server = grpc.aio.server(options=options)
    servicer = FakeRegistry()
    registry_pb2_grpc.add_MethodRegistryServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield servicer, f"127.0.0.1:{port}"
    finally:
        await server.stop(0)
