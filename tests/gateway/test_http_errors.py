"""Real service errors through the gateway: HTTP status + google.rpc.Status JSON.

The platform runs with auth on: 401 and 403 come from the services' auth
interceptor, 429 from a policy's `actor_rate_limit`. The gateway adds a
Bearer challenge to a 401, refuses a body over its limit or a message over the
services' limit itself (413) and keeps grpc-* headers out of HTTP replies, not
out of gRPC ones.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
import uuid

import grpc
import pytest
from google.protobuf import struct_pb2

from baton.orchestrator.v1 import orchestrator_pb2, orchestrator_pb2_grpc
from baton_cli._gateway import http_filter_config, load_template
from baton_core import free_port
from baton_core._server import MAX_MESSAGE_BYTES

ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"


def detail(body: dict, type_url: str) -> dict:
    (found,) = [d for d in body["details"] if d["@type"] == type_url]
    return found


async def test_bad_params_are_400_with_every_field_violation(http):
    reply = await http.post("/v1/dispatch", json={
        "operation": "casefile.create", "params": {"title": 5}})

    assert reply.status_code == 400
    body = reply.json()
    assert body["code"] == 3
    assert detail(body, ERROR_INFO)["reason"] == "INVALID_PARAMS"
    assert [v["field"] for v in detail(body, BAD_REQUEST)["field_violations"]] == [
        "params.title"]


async def test_malformed_json_is_400(http):
    reply = await http.post("/v1/dispatch", content=b'{"operation": ')

    assert reply.status_code == 400
    assert reply.json()["code"] == 3


async def test_unknown_method_and_unknown_session_are_404(http):
    method = await http.get("/v1/methods/no.such_method")
    assert method.status_code == 404
    assert method.json()["code"] == 5

    dispatched = await http.post("/v1/dispatch", json={"operation": "no.such_method"})
    assert dispatched.status_code == 404
    assert detail(dispatched.json(), ERROR_INFO)["reason"] == "METHOD_NOT_FOUND"

    # A stream that fails before its first message is an ordinary error reply.
    watched = await http.get("/v1/sessions/no-such-session:watch")
    assert watched.status_code == 404
    assert watched.json()["code"] == 5


async def test_stale_etag_is_409_aborted(http):
    session = (await http.post("/v1/sessions", json={"user_id": "etag-user"})).json()["session"]
    path = f"/v1/sessions/{session['session_id']}/context"
    first = await http.patch(path, json={"values": {"a": 1}, "etag": session["context"]["etag"]})
    assert first.status_code == 200

    stale = await http.patch(path, json={"values": {"a": 2}, "etag": session["context"]["etag"]})

    assert stale.status_code == 409
    assert stale.json()["code"] == 10  # ABORTED


async def test_taken_workflow_id_is_409_already_exists(http):
    workflow = {"workflow_id": f"wf_{uuid.uuid4().hex[:8]}", "name": "echo",
                "steps": [{"step_id": "a", "method": "demo.echo", "params": {"value": "x"}}]}
    assert (await http.post("/v1/workflows", json=workflow)).status_code == 200

    again = await http.post("/v1/workflows", json=workflow)

    assert again.status_code == 409
    assert again.json()["code"] == 6  # ALREADY_EXISTS


async def test_dispatch_to_a_method_whose_worker_is_gone_is_503(http):
    name = f"gone.work_{uuid.uuid4().hex[:8]}"
    registered = await http.post("/v1/methods", json={
        "method": {"name": name, "version": "1.0.0",
                   "retry_policy": {"strategy": "STRATEGY_NONE"}},
        "worker_id": f"{name}-worker", "address": f"127.0.0.1:{free_port()}",
        "lease_ttl": "60s"})
    assert registered.status_code == 200, registered.text

    # The orchestrator learns of the method through its registry watch.
    deadline = time.monotonic() + 10
    while True:
        reply = await http.post("/v1/dispatch", json={"operation": name, "params": {}})
        if reply.status_code != 404 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)

    assert reply.status_code == 503, reply.text
    assert reply.json()["code"] == 14  # UNAVAILABLE


async def test_missing_credentials_are_401(anonymous):
    reply = await anonymous.post("/v1/dispatch", json={"operation": "casefile.create",
                                                       "params": {"title": "t"}})

    assert reply.status_code == 401
    assert reply.headers["www-authenticate"] == "Bearer"
    body = reply.json()
    assert body["code"] == 16  # UNAUTHENTICATED
    assert "authorization: Bearer" in body["message"]
    assert detail(body, ERROR_INFO)["reason"] == "CREDENTIALS_MISSING"


async def test_an_expired_token_is_401(anonymous, running):
    expired = running.headers(ttl=-120)
    reply = await anonymous.post("/v1/dispatch", headers=expired, json={
        "operation": "casefile.create", "params": {"title": "t"}})

    assert reply.status_code == 401
    # A token was presented and is no good: the service's own challenge (RFC 6750).
    assert reply.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    body = reply.json()
    assert body["code"] == 16
    assert body["message"] == "token expired"
    assert detail(body, ERROR_INFO)["reason"] == "TOKEN_EXPIRED"


async def test_an_api_key_in_the_authorization_header_reaches_the_services(anonymous, running):
    reply = await anonymous.get("/v1/policies",
                                headers={"authorization": f"ApiKey {running.auth.api_key}"})

    assert reply.status_code == 200, reply.text
    assert "default" in [p["name"] for p in reply.json()["policies"]]


async def test_a_caller_without_the_required_role_is_403(anonymous, running):
    worker = running.headers("worker:someone", roles=("worker",))
    reply = await anonymous.post("/v1/dispatch", headers=worker, json={
        "operation": "casefile.create", "params": {"title": "t"}})

    assert reply.status_code == 403
    assert "www-authenticate" not in reply.headers  # authenticated, just not allowed
    body = reply.json()
    assert body["code"] == 7  # PERMISSION_DENIED
    assert "Dispatch" in body["message"]
    assert detail(body, ERROR_INFO)["reason"] == "ROLE_REQUIRED"


async def test_a_caller_over_its_rate_limit_is_429_with_retry_info(http, anonymous, running):
    name = f"limited-{uuid.uuid4().hex[:8]}"
    created = await http.post("/v1/policies", json={
        "name": name, "pattern": "demo.sleep", "description": "rate limit test",
        "actor_rate_limit": {"requests_per_second": 0.01, "burst": 2}})
    assert created.status_code == 200, created.text
    assert created.json()["policy"]["actor_rate_limit"]["burst"] == 2
    # Each actor has its own bucket: a fresh subject starts with a full one.
    caller = running.headers(f"limited-{uuid.uuid4().hex[:8]}", roles=("user",))
    try:
        replies = []
        for _ in range(5):
            replies.append(await anonymous.post("/v1/dispatch", headers=caller, json={
                "operation": "demo.sleep", "params": {"seconds": 0}}))
        other = await http.post("/v1/dispatch", json={
            "operation": "demo.sleep", "params": {"seconds": 0}})
    finally:
        assert (await http.delete(f"/v1/policies/{name}")).status_code == 200

    assert [r.status_code for r in replies] == [200, 200, 429, 429, 429], [
        r.text for r in replies]
    body = replies[2].json()
    assert body["code"] == 8  # RESOURCE_EXHAUSTED
    assert name in body["message"]
    info = detail(body, ERROR_INFO)
    assert info["reason"] == "RATE_LIMITED"
    assert info["metadata"]["policy"] == name
    delay = detail(body, "type.googleapis.com/google.rpc.RetryInfo")["retry_delay"]
    assert delay.endswith("s") and float(delay[:-1]) > 0
    # The same delay as HTTP's Retry-After, in whole seconds, rounded up.
    assert int(replies[2].headers["retry-after"]) == max(1, math.ceil(float(delay[:-1])))
    assert "retry-after" not in replies[0].headers
    assert other.status_code == 200, other.text  # another caller has its own bucket


async def test_a_body_over_the_gateway_limit_is_413_and_reaches_no_service(http):
    limit = http_filter_config(load_template(), "request-body-limit")[
        "extension_config"]["typed_config"]["max_request_bytes"]
    body = json.dumps({"operation": "demo.echo", "params": {"value": "x" * limit}}).encode()

    reply = await http.post("/v1/dispatch", content=body,
                            headers={"content-type": "application/json"})

    assert reply.status_code == 413, reply.text[:300]
    assert reply.json()["code"] == 8  # RESOURCE_EXHAUSTED
    assert "limit" in reply.json()["message"]


async def test_a_body_whose_message_no_service_takes_is_413_not_429(http):
    # Within the gateway's 32 MiB of JSON, over the services' 16 MiB message.
    body = json.dumps({"operation": "demo.echo",
                       "params": {"value": "x" * (MAX_MESSAGE_BYTES + 1)}}).encode()

    reply = await http.post("/v1/dispatch", content=body,
                            headers={"content-type": "application/json"})

    # The orchestrator refused it with 429 ("larger than max"): a retry
    # would be refused the same.
    assert reply.status_code == 413, reply.text[:300]
    assert reply.json() == {"code": 8,  # RESOURCE_EXHAUSTED
                            "message": "request message larger than the services' limit of 16 MiB"}


async def test_http_replies_carry_no_grpc_headers_and_grpc_callers_keep_their_status(
        http, running):
    ok = await http.post("/v1/dispatch", json={"operation": "demo.echo",
                                               "params": {"value": "v"}})
    missing = await http.get("/v1/methods/no.such_method")
    assert [ok.status_code, missing.status_code] == [200, 404], ok.text
    assert [h for r in (ok, missing) for h in r.headers if h.startswith("grpc-")] == []

    params = struct_pb2.Struct()
    params.update({"value": "v"})
    request = orchestrator_pb2.DispatchRequest(operation="demo.echo", params=params)
    async with grpc.aio.insecure_channel(running.addr("gateway")) as channel:
        stub = orchestrator_pb2_grpc.OrchestratorStub(channel)
        reply = await stub.Dispatch(request, timeout=10,
                                    metadata=tuple(running.headers().items()))
        with pytest.raises(grpc.aio.AioRpcError) as anonymous:
            await stub.Dispatch(request, timeout=10)
    assert reply.metadata.attempts == 1
    assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "authorization: Bearer" in anonymous.value.details()
