"""What the gateway itself puts into replies, against a fake registry.

Envoy's own errors have the JSON shape of the services' errors, with the gRPC
code that names them; a request body over the gateway's limit, or one whose
message is over the services' limit, never reaches a service (413, not the
services' 429); HTTP/JSON replies carry no grpc-* headers while gRPC callers
keep their status, and a 401 names the Bearer scheme.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

import grpc
import httpx
import pytest

from baton.orchestrator.v1 import orchestrator_pb2, orchestrator_pb2_grpc
from baton.registry.v1 import registry_pb2, registry_pb2_grpc
from baton_cli._gateway import http_filter_config, load_template, transcoder_config
from baton_core._server import MAX_MESSAGE_BYTES, SERVER_OPTIONS

from ._fake_registry import INVALID_TOKEN_CHALLENGE, fake_registry, not_http2, start_gateway

# The largest HTTP/JSON request body the gateway passes on.
BODY_LIMIT = http_filter_config(load_template(), "request-body-limit")[
    "extension_config"]["typed_config"]["max_request_bytes"]
# The largest reply message the gateway's transcoder takes from a service.
RESPONSE_LIMIT = transcoder_config(load_template())["max_response_body_size"]
# The gateway's answer to a request whose message no service would take.
MESSAGE_TOO_LARGE = {"code": grpc.StatusCode.RESOURCE_EXHAUSTED.value[0],
                     "message": "request message larger than the services' limit of 16 MiB"}


def body_of_size(size: int) -> bytes:
    """A RegisterMethod body of exactly `size` bytes."""
    shell = json.dumps({"method": {"name": "a.b", "description": ""}}).encode()
    return json.dumps({"method": {"name": "a.b",
                                  "description": "x" * (size - len(shell))}}).encode()


def body_for_message_of_size(size: int) -> bytes:
    """A RegisterMethod body whose request message is exactly `size` bytes."""
    def request(length: int) -> registry_pb2.RegisterMethodRequest:
        return registry_pb2.RegisterMethodRequest(
            method=registry_pb2.Method(name="a.b", description="x" * length))

    length = size - request(0).ByteSize()
    while request(length).ByteSize() > size:  # the length prefixes grow too
        length -= 1
    assert request(length).ByteSize() == size
    return json.dumps({"method": {"name": "a.b", "description": "x" * length}}).encode()


async def post_json(http: httpx.AsyncClient, path: str, body: bytes) -> httpx.Response:
    return await http.post(path, content=body, headers={"content-type": "application/json"})


def grpc_headers(reply: httpx.Response) -> list[str]:
    return [name for name in reply.headers if name.lower().startswith("grpc-")]


def status_body(reply: httpx.Response, status: int) -> dict:
    """The JSON status body of an HTTP error reply, after checking its status."""
    assert reply.status_code == status, reply.text[:300]
    assert reply.headers["content-type"] == "application/json"
    return reply.json()


@contextlib.asynccontextmanager
async def own_gateway(tmp_path, upstream, template=None):
    """A gateway of the test's own in front of `upstream`, stopped at the end."""
    gw = await start_gateway(tmp_path, upstream, template)
    try:
        yield gw
    finally:
        await asyncio.to_thread(gw.stop)


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
    assert status_body(reply, 413) == {
        "code": grpc.StatusCode.RESOURCE_EXHAUSTED.value[0],
        "message": f"request body larger than the gateway's limit of {BODY_LIMIT // 2**20} MiB"}


async def test_a_body_within_the_limit_whose_message_is_over_16_mib_is_413(http):
    reply = await post_json(http, "/v1/methods", body_of_size(BODY_LIMIT))

    # Sent on, the service refused it with 429 ("larger than max"), which
    # invites retries that can never succeed.
    assert status_body(reply, 413) == MESSAGE_TOO_LARGE


async def test_the_message_limit_is_the_services_receive_limit(http, fake):
    assert dict(SERVER_OPTIONS)["grpc.max_receive_message_length"] == MAX_MESSAGE_BYTES
    registered = len(fake[0].registered)

    at_limit = await post_json(http, "/v1/methods", body_for_message_of_size(MAX_MESSAGE_BYTES))
    over = await post_json(http, "/v1/methods", body_for_message_of_size(MAX_MESSAGE_BYTES + 1))

    assert at_limit.status_code == 200, at_limit.text[:300]
    assert fake[0].registered[registered:] == [MAX_MESSAGE_BYTES]  # the service took it
    assert over.status_code == 413, over.text[:300]
    assert over.json() == MESSAGE_TOO_LARGE


async def test_the_gateway_judges_the_message_not_the_json_body(http, fake):
    # Escaped text: six bytes of JSON ("\u0001") for each byte of the message.
    text = registry_pb2.Method(name="a.b", description="\x01" * (MAX_MESSAGE_BYTES // 4))
    escaped = json.dumps({"method": {"name": text.name, "description": text.description}}).encode()
    # A Struct of zeros: two bytes of JSON ("0,") for an 11-byte Value each.
    zeros = json.dumps({"method": {"name": "a.b", "input_schema": {"x": [0] * 2**21}}},
                       separators=(",", ":")).encode()
    assert len(escaped) > MAX_MESSAGE_BYTES and len(zeros) < MAX_MESSAGE_BYTES // 2
    registered = len(fake[0].registered)

    large_json = await post_json(http, "/v1/methods", escaped)
    small_json = await post_json(http, "/v1/methods", zeros)

    assert large_json.status_code == 200, large_json.text[:300]
    assert fake[0].registered[registered:] == [
        registry_pb2.RegisterMethodRequest(method=text).ByteSize()]
    # Sent on, the service refused it with 429; a JSON body limit cannot catch it.
    assert small_json.status_code == 413, small_json.text[:300]
    assert small_json.json() == MESSAGE_TOO_LARGE


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


async def test_a_reply_too_large_to_transcode_is_500_internal(tmp_path):
    # The transcoder takes a reply message up to max_response_body_size, twice
    # what Baton's services send at most: this fake sends more.
    options = tuple((dict(SERVER_OPTIONS) | {
        "grpc.max_send_message_length": 2 * RESPONSE_LIMIT}).items())
    async with fake_registry(options) as (_, registry), \
            own_gateway(tmp_path, registry) as gw, \
            httpx.AsyncClient(base_url=gw.url, timeout=30) as client:
        reply = await client.get(f"/v1/methods/large.{RESPONSE_LIMIT}")

    body = status_body(reply, 500)
    # Envoy's own 500 used to say UNKNOWN (2).
    assert body["code"] == grpc.StatusCode.INTERNAL.value[0], body
    assert "limit" in body["message"]


async def test_a_service_envoy_cannot_read_is_502_unavailable(tmp_path):
    async with not_http2() as upstream, own_gateway(tmp_path, upstream) as gw:
        async with httpx.AsyncClient(base_url=gw.url, timeout=10) as client:
            reply = await client.get("/v1/methods/a.b")
        async with grpc.aio.insecure_channel(gw.url.removeprefix("http://")) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as grpc_call:
                await registry_pb2_grpc.MethodRegistryStub(channel).GetMethod(
                    registry_pb2.GetMethodRequest(name="a.b"), timeout=5)

    body = status_body(reply, 502)
    # Envoy's own 502 used to say UNKNOWN (2).
    assert body["code"] == grpc.StatusCode.UNAVAILABLE.value[0], body
    assert "protocol error" in body["message"]
    assert grpc_headers(reply) == []
    assert grpc_call.value.code() == grpc.StatusCode.UNAVAILABLE  # gRPC callers: as before


async def test_a_call_past_its_grpc_timeout_is_504_with_a_status_body(http):
    reply = await http.get("/v1/methods/hold.1000", headers={"grpc-timeout": "200m"})

    assert reply.status_code == 504
    assert reply.json()["code"] == grpc.StatusCode.DEADLINE_EXCEEDED.value[0]


async def test_a_request_that_stalls_is_408_with_a_status_body(fake, tmp_path):
    # The same config with stream_idle_timeout cut from an hour to a second.
    template = load_template()
    (listener,) = template["static_resources"]["listeners"]
    listener["filter_chains"][0]["filters"][0]["typed_config"]["stream_idle_timeout"] = "1s"
    async with own_gateway(tmp_path, fake[1], template) as gw:
        host, _, port = gw.url.removeprefix("http://").rpartition(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        # Ten of the hundred bytes promised, then nothing.
        writer.write(b"POST /v1/methods HTTP/1.1\r\nhost: gateway\r\n"
                     b"content-type: application/json\r\ncontent-length: 100\r\n\r\n"
                     b'{"method":')
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), 10)  # Envoy closes after replying
        writer.close()

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
