"""What the gateway itself puts into replies, against a fake registry.

Envoy's own errors have the JSON shape of the services' errors, a request
body over the gateway's limit never reaches a service, HTTP/JSON replies
carry no grpc-* headers while gRPC callers keep their status, and a 401 names
the Bearer scheme.
"""

from __future__ import annotations

import asyncio
import json

import grpc
import httpx
import pytest

from baton.orchestrator.v1 import orchestrator_pb2, orchestrator_pb2_grpc
from baton.registry.v1 import registry_pb2, registry_pb2_grpc
from baton_cli._gateway import http_filter_config, load_template

from ._fake_registry import INVALID_TOKEN_CHALLENGE, fake_registry, start_gateway

# The largest HTTP/JSON request body the gateway passes on.
BODY_LIMIT = http_filter_config(load_template(), "request-body-limit")[
    "extension_config"]["typed_config"]["max_request_bytes"]


def body_of_size(size: int) -> bytes:
    """A RegisterMethod body of exactly `size` bytes."""
    shell = json.dumps({"method": {"name": "a.b", "description": ""}}).encode()
    return json.dumps({"method": {"name": "a.b",
                                  "description": "x" * (size - len(shell))}}).encode()


def grpc_headers(reply: httpx.Response) -> list[str]:
    return [name for name in reply.headers if name.lower().startswith("grpc-")]


@pytest.fixture(scope="module")
async def fake():
    async with fake_registry() as served:
        yield served


@pytest.fixture(scope="module")
async def gateway(fake, tmp_path_factory):
    gw = await start_gateway(tmp_path_factory.mktemp("gateway"), fake[1])
    yield gw
    await asyncio.to_thread(gw.stop)


@pytest.fixture
async def http(gateway):
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:
        yield client


async def test_a_body_over_the_limit_is_413_with_a_status_body_before_any_service(http):
    reply = await http.post("/v1/methods", content=body_of_size(BODY_LIMIT + 1),
                            headers={"content-type": "application/json"})

    # Without the limit the service read it and answered 429 ("larger than max").
    assert reply.status_code == 413, reply.text[:300]
    assert reply.headers["content-type"] == "application/json"
    assert reply.json() == {
        "code": grpc.StatusCode.RESOURCE_EXHAUSTED.value[0],
        "message": f"request body larger than the gateway's limit of {BODY_LIMIT // 2**20} MiB"}


async def test_a_body_at_the_limit_reaches_the_service_which_judges_the_message(http):
    reply = await http.post("/v1/methods", content=body_of_size(BODY_LIMIT),
                            headers={"content-type": "application/json"})

    # A message over the services' 16 MiB: the service's own answer.
    assert reply.status_code == 429, reply.text[:300]
    assert "larger than max" in reply.json()["message"]


async def test_grpc_callers_are_not_held_to_the_http_body_limit(gateway):
    request = registry_pb2.RegisterMethodRequest(
        method=registry_pb2.Method(name="a.b", description="x" * (BODY_LIMIT + 1)))
    async with grpc.aio.insecure_channel(gateway.url.removeprefix("http://")) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await registry_pb2_grpc.MethodRegistryStub(channel).RegisterMethod(
                request, timeout=20)

    # The service refuses it as it would without the gateway: not Envoy's 413.
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "larger than max" in info.value.details()


async def test_a_call_past_its_grpc_timeout_is_504_with_a_status_body(http):
    reply = await http.get("/v1/methods/hold.1000", headers={"grpc-timeout": "200m"})

    assert reply.status_code == 504
    assert reply.json()["code"] == grpc.StatusCode.DEADLINE_EXCEEDED.value[0]


async def test_a_request_that_stalls_is_408_with_a_status_body(fake, tmp_path):
    # The same config with stream_idle_timeout cut from an hour to a second.
    template = load_template()
    (listener,) = template["static_resources"]["listeners"]
    listener["filter_chains"][0]["filters"][0]["typed_config"]["stream_idle_timeout"] = "1s"
    gw = await start_gateway(tmp_path, fake[1], template)
    try:
        host, _, port = gw.url.removeprefix("http://").rpartition(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        # Ten of the hundred bytes promised, then nothing.
        writer.write(b"POST /v1/methods HTTP/1.1\r\nhost: gateway\r\n"
                     b"content-type: application/json\r\ncontent-length: 100\r\n\r\n"
                     b'{"method":')
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), 10)  # Envoy closes after replying
        writer.close()
    finally:
        await asyncio.to_thread(gw.stop)

    head, _, body = raw.decode().partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 408"), raw
    assert "content-type: application/json" in head.lower()
    assert json.loads(body) == {"code": grpc.StatusCode.DEADLINE_EXCEEDED.value[0],
                                "message": "stream timeout"}


async def test_http_replies_carry_no_grpc_headers(http):
    ok = await http.get("/v1/methods/a.b")
    failed = await http.get("/v1/methods/fail.not_found")
    down = await http.post("/v1/dispatch", json={"operation": "casefile.create"})
    async with http.stream("GET", "/v1/methods:watch") as streamed:
        await streamed.aread()

    assert [ok.status_code, failed.status_code, down.status_code,
            streamed.status_code] == [200, 404, 503, 200]
    # The transcoder put grpc-status: 0 and grpc-message into the 200.
    assert {r.url.path: grpc_headers(r) for r in (ok, failed, down, streamed)} == {
        r.url.path: [] for r in (ok, failed, down, streamed)}


async def test_grpc_callers_through_the_gateway_keep_their_status(gateway):
    async with grpc.aio.insecure_channel(gateway.url.removeprefix("http://")) as channel:
        stub = registry_pb2_grpc.MethodRegistryStub(channel)
        call = stub.GetMethod(registry_pb2.GetMethodRequest(name="a.b"), timeout=5)
        assert (await call).method.version == "1.0.0"
        assert await call.code() == grpc.StatusCode.OK

        with pytest.raises(grpc.aio.AioRpcError) as unauthenticated:
            await stub.GetMethod(registry_pb2.GetMethodRequest(name="fail.unauthenticated"),
                                 timeout=5)
        with pytest.raises(grpc.aio.AioRpcError) as down:
            await orchestrator_pb2_grpc.OrchestratorStub(channel).Dispatch(
                orchestrator_pb2.DispatchRequest(operation="casefile.create"), timeout=5)

    assert unauthenticated.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert unauthenticated.value.details() == "fake UNAUTHENTICATED"
    assert down.value.code() == grpc.StatusCode.UNAVAILABLE  # Envoy's own reply
    assert "upstream connect error" in down.value.details()


async def test_unauthenticated_is_401_with_a_bearer_challenge(http):
    unauthenticated = await http.get("/v1/methods/fail.unauthenticated")
    denied = await http.get("/v1/methods/fail.permission_denied")
    ok = await http.get("/v1/methods/a.b")

    assert unauthenticated.status_code == 401
    assert unauthenticated.headers["www-authenticate"] == "Bearer"
    assert unauthenticated.json()["code"] == grpc.StatusCode.UNAUTHENTICATED.value[0]
    assert [denied.status_code, ok.status_code] == [403, 200]
    assert "www-authenticate" not in denied.headers and "www-authenticate" not in ok.headers


async def test_a_challenge_the_service_sent_is_kept(http):
    reply = await http.get("/v1/methods/challenge.invalid")

    assert reply.status_code == 401
    assert reply.headers.get_list("www-authenticate") == [INVALID_TOKEN_CHALLENGE]
