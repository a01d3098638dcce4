"""The gateway config itself, against a fake registry that answers what we tell it.

These pin what Envoy does independently of the services: every gRPC status
becomes its HTTP status with a google.rpc.Status JSON body, headers reach the
upstream as metadata, streams are newline-delimited JSON, gRPC passes through.
"""

from __future__ import annotations

import asyncio
import json

import grpc
import httpx
import pytest

from baton.registry.v1 import registry_pb2, registry_pb2_grpc
from baton_cli._gateway import (
    GatewayError,
    GatewaySettings,
    load_template,
    render,
    transcoder_config,
)
from baton_core._server import DEFAULT_MAX_STREAMS, server_options

from ._fake_registry import fake_registry, start_gateway

# gRPC code -> HTTP status, as promised in the README ("Use it over HTTP").
HTTP_STATUS = {
    "INVALID_ARGUMENT": 400, "FAILED_PRECONDITION": 400, "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401, "PERMISSION_DENIED": 403, "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409, "ABORTED": 409, "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 499, "UNKNOWN": 500, "INTERNAL": 500, "DATA_LOSS": 500,
    "UNIMPLEMENTED": 501, "UNAVAILABLE": 503, "DEADLINE_EXCEEDED": 504,
}


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
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as client:
        yield client


@pytest.mark.parametrize("code", sorted(HTTP_STATUS))
async def test_grpc_status_becomes_http_status_with_a_status_json_body(http, code):
    reply = await http.get(f"/v1/methods/fail.{code.lower()}")

    assert reply.status_code == HTTP_STATUS[code]
    assert reply.headers["content-type"] == "application/json"
    body = reply.json()
    assert body["code"] == grpc.StatusCode[code].value[0]
    assert body["message"] == f"fake {code}"
    assert body["details"][0] == {"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                  "reason": "FAKE", "domain": "baton.dev", "metadata": {}}


async def test_resource_exhausted_carries_retry_info(http):
    reply = await http.get("/v1/methods/fail.resource_exhausted")

    assert reply.status_code == 429
    assert {"@type": "type.googleapis.com/google.rpc.RetryInfo",
            "retry_delay": "2s"} in reply.json()["details"]


async def test_request_headers_reach_the_service_as_metadata(http, fake):
    servicer, _ = fake
    await http.get("/v1/methods/a.b", headers={
        "authorization": "Bearer t0ken", "x-api-key": "k1",
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})

    seen = servicer.metadata[-1]
    assert seen["authorization"] == "Bearer t0ken"
    assert seen["x-api-key"] == "k1"
    assert seen["traceparent"].startswith("00-0af7651916cd43dd")


async def test_responses_use_proto_field_names_and_print_defaults(http):
    reply = await http.get("/v1/methods/a.b")

    method = reply.json()["method"]
    assert method["default_timeout"] == "5s"
    # Scalars and lists with default values are printed; unset messages are not.
    assert method["idempotent"] is False and method["description"] == ""
    assert method["tags"] == [] and method["endpoints"] == []
    assert "input_schema" not in method


async def test_server_streams_are_newline_delimited_json(http):
    async with http.stream("GET", "/v1/methods:watch") as reply:
        assert reply.status_code == 200
        lines = [line async for line in reply.aiter_lines() if line]

    assert [json.loads(line)["method"]["name"] for line in lines] == [
        "a.one", "a.two", "a.three"]


async def test_a_service_that_is_down_is_503_with_a_status_body(http):
    reply = await http.post("/v1/dispatch", json={"operation": "casefile.create"})

    assert reply.status_code == 503
    assert reply.json()["code"] == grpc.StatusCode.UNAVAILABLE.value[0]


async def test_unknown_route_is_404_and_unknown_query_parameter_400(http):
    missing = await http.get("/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.json()["code"] == grpc.StatusCode.NOT_FOUND.value[0]

    bad = await http.get("/v1/methods", params={"colour": "blue"})
    assert bad.status_code == 400
    assert bad.json() == {"code": grpc.StatusCode.INVALID_ARGUMENT.value[0],
                          "message": bad.json()["message"]}
    assert "colour" in bad.json()["message"]


async def test_healthz_answers_while_envoy_serves(http):
    reply = await http.get("/healthz")
    assert reply.status_code == 200


async def test_the_gateway_closes_connections_over_its_limit_and_keeps_admin_open(
        fake, tmp_path):
    # deploy/envoy/envoy.yaml bounds the client connections Envoy keeps at once
    # (its edge-proxy advice); here the same config with a limit of 2.
    template = load_template()
    (monitor,) = template["overload_manager"]["resource_monitors"]
    assert monitor["typed_config"]["max_active_downstream_connections"] == 50_000
    monitor["typed_config"]["max_active_downstream_connections"] = 2
    gw = await start_gateway(tmp_path, fake[1], template)
    try:
        async with httpx.AsyncClient(base_url=gw.url, timeout=5) as one, \
                httpx.AsyncClient(base_url=gw.url, timeout=5) as two:
            # Each client keeps its connection open between requests.
            for client in (one, two, one, two):
                assert (await client.get("/healthz")).status_code == 200
            async with httpx.AsyncClient(base_url=gw.url, timeout=5) as third:
                with pytest.raises(httpx.TransportError):
                    await third.get("/healthz")
            async with httpx.AsyncClient(base_url=gw.admin_url(), timeout=5) as admin:
                assert (await admin.get("/ready")).status_code == 200  # outside the limit
                stats = (await admin.get(
                    "/stats", params={"filter": "downstream_global_cx_overflow"})).text
        rejected = [int(line.rsplit(":", 1)[1]) for line in stats.splitlines()
                    if line.startswith("listener.127.0.0.1_")]
        assert rejected == [1]  # the gateway's listener turned the third away
        # Once the two have closed, new connections are served again.
        for _ in range(50):
            async with httpx.AsyncClient(base_url=gw.url, timeout=5) as later:
                try:
                    reply = await later.get("/healthz")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
        assert reply.status_code == 200
        log = (tmp_path / "envoy.log").read_text()
        assert "no configured limit to the number of allowed active downstream" not in log
    finally:
        await asyncio.to_thread(gw.stop)


async def test_grpc_clients_can_use_the_gateway_port(gateway):
    async with grpc.aio.insecure_channel(gateway.url.removeprefix("http://")) as channel:
        stub = registry_pb2_grpc.MethodRegistryStub(channel)
        reply = await stub.GetMethod(registry_pb2.GetMethodRequest(name="a.b"), timeout=5)
        assert reply.method.version == "1.0.0"

        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.GetMethod(registry_pb2.GetMethodRequest(name="fail.not_found"),
                                 timeout=5)
        # gRPC callers keep plain gRPC errors: no JSON in the message.
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
        assert info.value.details() == "fake NOT_FOUND"


async def test_a_burst_beyond_envoys_default_circuit_breakers_is_let_through(gateway, fake):
    # By default Envoy keeps 1,024 requests in flight to one service, queues 1,024
    # more and turns the rest away (UNAVAILABLE, "overflow"); the gateway lets as
    # many through at once as the services take (baton_core's MAX_PENDING_CALLS).
    # Three connections, as one HTTP/2 connection carries at most 1,024 streams.
    per_connection, connections = 1000, 3
    burst = per_connection * connections
    channels = [grpc.aio.insecure_channel(gateway.url.removeprefix("http://"),
                                          options=[("grpc.use_local_subchannel_pool", 1)])
                for _ in range(connections)]
    try:
        replies = await asyncio.gather(*(
            registry_pb2_grpc.MethodRegistryStub(channel).GetMethod(
                registry_pb2.GetMethodRequest(name=f"hold.{burst}"), timeout=20)
            for channel in channels for _ in range(per_connection)), return_exceptions=True)
    finally:
        for channel in channels:
            await channel.close()
    failed = [r for r in replies if isinstance(r, Exception)]
    assert not failed, f"{len(failed)} of {burst} failed, e.g. {failed[0]!r}"
    assert fake[0].held_in_vain == 0  # all of them were in flight at once


async def test_more_calls_than_a_service_allows_per_connection_all_go_through(tmp_path):
    # A Baton server allows 100 open calls per connection. Envoy does not go by
    # the limit a server announces: without the limit stated in its cluster it
    # put every call on one connection and the service refused those over 100
    # (UNAVAILABLE, "remote reset"). With it, Envoy opens more connections.
    burst = 3 * DEFAULT_MAX_STREAMS
    async with fake_registry(server_options({})) as (servicer, address):
        gw = await start_gateway(tmp_path, address)
        try:
            async with grpc.aio.insecure_channel(gw.url.removeprefix("http://")) as channel:
                stub = registry_pb2_grpc.MethodRegistryStub(channel)
                replies = await asyncio.gather(*(
                    stub.GetMethod(registry_pb2.GetMethodRequest(name=f"hold.{burst}"),
                                   timeout=20)
                    for _ in range(burst)), return_exceptions=True)
        finally:
            await asyncio.to_thread(gw.stop)
    failed = [r for r in replies if isinstance(r, Exception)]
    assert not failed, f"{len(failed)} of {burst} failed, e.g. {failed[0]!r}"
    assert servicer.held_in_vain == 0  # all of them were in the service at once


def test_render_changes_only_the_addresses_and_the_descriptor_path():
    template = load_template()
    settings = GatewaySettings(
        listen="0.0.0.0:9000", admin="127.0.0.1:9001", descriptor="/d.binpb",
        upstreams={"registry": "r:1", "orchestrator": "o:2", "sessions": "s:3"})

    config = render(settings, template)

    resources = config["static_resources"]
    assert resources["listeners"][0]["address"]["socket_address"] == {
        "address": "0.0.0.0", "port_value": 9000}
    assert config["admin"]["address"]["socket_address"]["port_value"] == 9001
    endpoints = {c["name"]: c["load_assignment"]["endpoints"][0]["lb_endpoints"][0][
        "endpoint"]["address"]["socket_address"] for c in resources["clusters"]}
    assert endpoints == {"registry": {"address": "r", "port_value": 1},
                         "orchestrator": {"address": "o", "port_value": 2},
                         "sessions": {"address": "s", "port_value": 3}}
    assert transcoder_config(config)["proto_descriptor"] == "/d.binpb"
    # Everything else is the template's.
    assert render(GatewaySettings(
        listen="127.0.0.1:8080", admin="127.0.0.1:9901",
        descriptor="deploy/envoy/descriptor.binpb",
        upstreams={"registry": "127.0.0.1:50051", "orchestrator": "127.0.0.1:50052",
                   "sessions": "127.0.0.1:50053"}), template) == template


def test_render_refuses_a_missing_upstream_or_a_bad_address():
    with pytest.raises(GatewayError, match="sessions"):
        render(GatewaySettings(listen="127.0.0.1:1", descriptor="d",
                               upstreams={"registry": "a:1", "orchestrator": "b:2"}))
    with pytest.raises(GatewayError, match="host:port"):
        render(GatewaySettings(listen="nope", descriptor="d", upstreams={
            "registry": "a:1", "orchestrator": "b:2", "sessions": "c:3"}))
