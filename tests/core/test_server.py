"""The shared bootstrap: health per service, reflection, error mapping, graceful drain."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

import baton_core
from baton.provider.v1 import provider_pb2, provider_pb2_grpc
from baton_core import GrpcServer, InvalidArgument, Service, from_rpc_error
from baton_core import constants as c


class Provider(provider_pb2_grpc.MethodProviderServicer):
    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.entered = asyncio.Event()

    async def Invoke(self, request, context):
        if request.method == "bad":
            raise InvalidArgument("bad input", violations=[("params.x", "must be set")])
        if request.method == "crash":
            raise ZeroDivisionError("division by zero")
        if request.method == "slow":
            self.entered.set()
            await self.release.wait()
        return provider_pb2.InvokeResponse()


@pytest.fixture
async def served():
    provider = Provider()
    server = GrpcServer("127.0.0.1:0", [Service(
        c.PROVIDER_SERVICE, provider, provider_pb2_grpc.add_MethodProviderServicer_to_server)],
        drain_seconds=1.0)
    port = await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    yield server, provider, channel
    provider.release.set()
    await channel.close()
    server.drain_seconds = 0
    await server.stop(0)


async def test_health_reports_serving_per_service(served):
    _, _, channel = served
    health = health_pb2_grpc.HealthStub(channel)
    for name in ("", c.PROVIDER_SERVICE):
        reply = await health.Check(health_pb2.HealthCheckRequest(service=name))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_reflection_lists_the_hosted_services(served):
    _, _, channel = served
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    call = stub.ServerReflectionInfo(iter([request]))
    reply = await call.read()
    call.cancel()  # an open stream at the server's stop would log its own noise
    names = {s.name for s in reply.list_services_response.service}
    assert c.PROVIDER_SERVICE in names
    assert "grpc.health.v1.Health" in names


async def test_baton_errors_carry_their_code_and_field_violations(served):
    _, _, channel = served
    stub = provider_pb2_grpc.MethodProviderStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Invoke(provider_pb2.InvokeRequest(method="bad"))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    err = from_rpc_error(info.value)
    assert err.violations == [("params.x", "must be set")]
    assert err.reason == "INVALID_ARGUMENT"



async def test_a_request_that_does_not_parse_is_invalid_argument(served, caplog):
    _, _, channel = served
    raw = channel.unary_unary("/baton.provider.v1.MethodProvider/Invoke")
    nested = provider_pb2.InvokeRequest(method="m")
    value = nested.params.fields["v"]
    for _ in range(150):  # past protobuf's recursion limit of 100
        value = value.struct_value.fields["v"]
    value.string_value = "deep"
    for data in (b"\x0a\x02\xff\xfe",  # field 1 (method): invalid UTF-8
                 nested.SerializeToString(), b"\xff\xff\xff"):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await raw(data)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value
        err = from_rpc_error(info.value)
        assert err.reason == "UNDECODABLE_REQUEST" and "could not be read" in err.message
    # Only what the request's own handling logged: a stream some earlier test
    # left open can report the server's stop through asyncio at any moment.
    own = [r for r in caplog.records if r.name.startswith(("grpc", "baton"))]
    assert not [r for r in own if r.exc_info or "Traceback" in r.getMessage()]

async def test_unexpected_exceptions_become_internal_without_traceback(served):
    _, _, channel = served
    stub = provider_pb2_grpc.MethodProviderStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Invoke(provider_pb2.InvokeRequest(method="crash"))
    assert info.value.code() == grpc.StatusCode.INTERNAL
    assert "ZeroDivisionError: division by zero" in info.value.details()
    assert "Traceback" not in info.value.details()


async def test_draining_server_reports_not_serving_and_finishes_calls_in_flight(served):
    server, provider, channel = served
    stub = provider_pb2_grpc.MethodProviderStub(channel)
    call = asyncio.ensure_future(stub.Invoke(provider_pb2.InvokeRequest(method="slow")))
    await provider.entered.wait()
    health = health_pb2_grpc.HealthStub(channel)
    stopping = asyncio.ensure_future(server.stop(grace=5))
    for _ in range(100):
        reply = await health.Check(health_pb2.HealthCheckRequest(service=c.PROVIDER_SERVICE))
        if reply.status == health_pb2.HealthCheckResponse.NOT_SERVING:
            break
        await asyncio.sleep(0.01)
    assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING
    provider.release.set()
    assert isinstance(await call, provider_pb2.InvokeResponse)
    await stopping


def test_core_exports_are_pinned():
    assert set(baton_core.__all__) >= {
        "GrpcServer", "Service", "Settings", "BatonError", "InvalidArgument", "NotFound",
        "from_rpc_error", "make_engine", "migrate", "RedisServer", "ParamsValidator"}
    for name in baton_core.__all__:
        assert hasattr(baton_core, name), name


async def test_a_burst_of_calls_beyond_grpcs_default_backlog_is_served_whole(served):
    # gRPC servers queue calls that arrived before the application asked for them;
    # past 1,000 queued (its default) it cancels a growing share of new ones. A burst
    # of StartRuns or Dispatches must not lose calls to that, so the limit is raised.
    _, _, channel = served
    stub = provider_pb2_grpc.MethodProviderStub(channel)
    replies = await asyncio.gather(*(stub.Invoke(provider_pb2.InvokeRequest(method="m"))
                                     for _ in range(4000)), return_exceptions=True)
    failed = [r for r in replies if isinstance(r, Exception)]
    assert not failed, f"{len(failed)} of 4000 failed, e.g. {failed[0]!r}"


async def test_a_second_server_on_a_port_in_use_fails_to_listen_instead_of_sharing_it(served):
    # With gRPC's default (SO_REUSEPORT) both bound, and calls went to either.
    server, _, _ = served
    second = GrpcServer(f"127.0.0.1:{server.port}", [Service(
        c.PROVIDER_SERVICE, Provider(), provider_pb2_grpc.add_MethodProviderServicer_to_server)])
    with pytest.raises(baton_core.ListenError,
                       match=f"cannot listen on 127.0.0.1:{server.port}: Address already in use"):
        await second.start()


def test_bind_problem_names_why_a_port_cannot_be_listened_on():
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        assert baton_core.bind_problem("127.0.0.1", port) == "Address already in use"
    assert baton_core.bind_problem("127.0.0.1", port) is None
    assert baton_core.bind_problem("127.0.0.1", 0) is None


def test_the_startup_heap_is_frozen_and_later_garbage_still_collected():
    """`freeze_startup_heap` (called once a service or worker serves) takes the
    objects of starting up out of full collections; cycles made later are still
    collected. Run in a child so the test process's own heap stays as it is."""
    script = (
        "import gc, baton_core\n"
        "baton_core.freeze_startup_heap()\n"
        "print(gc.get_freeze_count())\n"
        "class Node: pass\n"
        "for _ in range(10):\n"
        "    n = Node(); n.me = n\n"
        "del n\n"
        "print(gc.collect())\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, timeout=60).stdout.split()
    frozen, collected = int(out[0]), int(out[1])
    assert frozen > 10_000  # modules, descriptors and the rest of baton_core's imports
    assert collected >= 10


class Counting(provider_pb2_grpc.MethodProviderServicer):
    def __init__(self) -> None:
        self.open = self.most = 0

    async def Invoke(self, request, context):
        self.open += 1
        self.most = max(self.most, self.open)
        try:
            await asyncio.sleep(0.02)
        finally:
            self.open -= 1
        return provider_pb2.InvokeResponse()


async def test_a_burst_over_the_stream_limit_waits_in_the_client(monkeypatch):
    """More calls at once on one channel than BATON_MAX_STREAMS_PER_CONNECTION:
    none is refused; the server never has more than the limit open at once."""
    monkeypatch.setenv("BATON_MAX_STREAMS_PER_CONNECTION", "8")
    provider = Counting()
    server = GrpcServer("127.0.0.1:0", [Service(
        c.PROVIDER_SERVICE, provider, provider_pb2_grpc.add_MethodProviderServicer_to_server)])
    port = await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = provider_pb2_grpc.MethodProviderStub(channel)
            replies = await asyncio.gather(
                *(stub.Invoke(provider_pb2.InvokeRequest(method="m")) for _ in range(120)),
                return_exceptions=True)
    finally:
        await server.stop(0)
    assert [r for r in replies if isinstance(r, Exception)] == []
    assert provider.most == 8


def test_the_stream_limit_setting():
    from baton_core._server import DEFAULT_MAX_STREAMS, server_options

    def limit(env):
        return dict(server_options(env)).get("grpc.max_concurrent_streams")

    assert limit({}) == DEFAULT_MAX_STREAMS == 100
    assert limit({"BATON_MAX_STREAMS_PER_CONNECTION": "250"}) == 250
    assert dict(server_options({}))["grpc.http.overload_protection"] == 0
    assert limit({"BATON_MAX_STREAMS_PER_CONNECTION": "0"}) is None  # gRPC's default: none
    with pytest.raises(baton_core.SettingError, match="BATON_MAX_STREAMS_PER_CONNECTION"):
        server_options({"BATON_MAX_STREAMS_PER_CONNECTION": "many"})
