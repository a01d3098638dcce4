"""The platform over plain HTTP/JSON through the real Envoy gateway."""

from __future__ import annotations

import json
import uuid

import grpc

from ._platform import wait_for_method


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


async def test_a_method_registered_over_http_can_be_read_searched_and_deleted(http):
    name = f"billing.{unique('refund_')}"
    schema = {"type": "object", "properties": {"invoice_id": {"type": "string"}},
              "required": ["invoice_id"]}

    created = await http.post("/v1/methods", json={"method": {
        "name": name, "version": "1.0.0", "description": "Refund an invoice",
        "tags": ["billing"], "input_schema": schema}})
    assert created.status_code == 200, created.text
    assert created.json()["created"] is True

    got = (await http.get(f"/v1/methods/{name}")).json()["method"]
    assert got["input_schema"] == schema and got["domain"] == "billing"
    listed = (await http.get("/v1/methods", params={"domain": "billing"})).json()
    assert name in [m["name"] for m in listed["methods"]]
    valid = await http.post(f"/v1/methods/{name}:validate", json={"params": {}})
    assert valid.status_code == 200 and valid.json()["valid"] is False

    assert (await http.delete(f"/v1/methods/{name}")).status_code == 200
    assert (await http.get(f"/v1/methods/{name}")).status_code == 404


async def test_dispatch_over_http_returns_the_result_and_its_metadata(http, running):
    reply = await http.post("/v1/dispatch", json={
        "operation": "casefile.create", "params": {"title": "Broken boiler"}})

    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["result"]["casefile_id"].startswith("cf_")
    meta = body["metadata"]
    assert meta["attempts"] == 1 and meta["dry_run"] is False
    assert meta["worker_address"] == running.addr("worker")
    assert meta["execution_id"].startswith("ex_")


async def test_large_params_and_results_pass_the_gateway_both_ways(http):
    # 5 MB each way: Envoy's default 1 MiB transcoder buffer answered 500 for 2 MB.
    value = "x" * 5_000_000
    reply = await http.post("/v1/dispatch", json={"operation": "demo.echo",
                                                  "params": {"value": value}})
    assert reply.status_code == 200, reply.text[:300]
    assert reply.json()["result"]["value"] == value


async def test_a_workflow_created_and_run_over_http_streams_its_events_as_ndjson(http):
    workflow_id = unique("wf_")
    created = await http.post("/v1/workflows", params={"request_id": workflow_id}, json={
        "workflow_id": workflow_id, "name": "casefile_setup", "steps": [
            {"step_id": "create", "method": "casefile.create",
             "params": {"title": "${input.title}"}},
            {"step_id": "note", "method": "casefile.add_note", "depends_on": ["create"],
             "params": {"casefile_id": "${steps.create.casefile_id}", "text": "hi"}}]})
    assert created.status_code == 200, created.text
    assert created.json()["workflow"]["version"] == 1

    started = await http.post("/v1/runs", json={
        "workflow_id": workflow_id, "input": {"title": "Leaking tap"}})
    assert started.status_code == 200, started.text
    run_id = started.json()["run"]["run_id"]

    # WatchRun ends when the run ends: one JSON object per line until then.
    async with http.stream("GET", f"/v1/runs/{run_id}:watch") as reply:
        assert reply.status_code == 200
        events = [json.loads(line)["event"] async for line in reply.aiter_lines() if line]
    assert [int(e["sequence"]) for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["run_status"] == "STATUS_SUCCEEDED"
    assert {e["step_id"] for e in events if e["step_status"] == "STATUS_SUCCEEDED"} == {
        "create", "note"}

    run = (await http.get(f"/v1/runs/{run_id}")).json()["run"]
    assert run["status"] == "STATUS_SUCCEEDED"
    assert run["output"]["note"]["note_count"] == 1
    steps = (await http.get(f"/v1/runs/{run_id}/steps")).json()["steps"]
    assert [s["step_id"] for s in steps] == ["create", "note"]


async def test_a_session_is_used_updated_and_watched_over_http(http):
    session = (await http.post("/v1/sessions", json={"user_id": unique("u_")})).json()["session"]
    session_id = session["session_id"]
    assert session["status"] == "STATUS_ACTIVE"

    updated = await http.patch(f"/v1/sessions/{session_id}/context", json={
        "values": {"priority": "high"}, "etag": session["context"]["etag"]})
    assert updated.status_code == 200, updated.text
    assert updated.json()["context"]["values"] == {"priority": "high"}
    dispatched = await http.post("/v1/dispatch", json={
        "operation": "casefile.create", "params": {"title": "t"}, "session_id": session_id})
    assert dispatched.status_code == 200, dispatched.text

    history = (await http.get(f"/v1/sessions/{session_id}/executions")).json()
    assert [e["operation"] for e in history["executions"]] == ["casefile.create"]
    # WatchSession replays the past, then stays open for live events.
    async with http.stream("GET", f"/v1/sessions/{session_id}:watch") as reply:
        assert reply.status_code == 200
        types = []
        async for line in reply.aiter_lines():
            types.append(json.loads(line)["event"]["type"])
            if len(types) == 3:
                break
    assert types == ["TYPE_CREATED", "TYPE_CONTEXT_CHANGED", "TYPE_EXECUTION_TRACKED"]

    closed = await http.post(f"/v1/sessions/{session_id}:close", json={})
    assert closed.json()["session"]["status"] == "STATUS_CLOSED"


async def test_policies_and_hooks_are_readable_over_http(http):
    policies = (await http.get("/v1/policies")).json()["policies"]
    assert "default" in [p["name"] for p in policies]
    default = (await http.get("/v1/policies/default")).json()["policy"]
    assert default["pattern"] == "*"
    hooks = (await http.get("/v1/hooks")).json()["hooks"]
    assert {"metrics", "session_lifecycle"} <= {h["name"] for h in hooks}


async def test_method_changes_stream_as_ndjson(running):
    method = await wait_for_method(running, "casefile.add_note")
    assert method["endpoints"][0]["address"] == running.addr("worker")


async def test_grpc_clients_reach_every_service_through_the_gateway(running):
    from baton.orchestrator.v1 import policies_pb2, policies_pb2_grpc
    from baton.registry.v1 import registry_pb2, registry_pb2_grpc
    from baton.sessions.v1 import sessions_pb2, sessions_pb2_grpc

    metadata = tuple(running.headers().items())
    async with grpc.aio.insecure_channel(running.addr("gateway")) as channel:
        method = await registry_pb2_grpc.MethodRegistryStub(channel).GetMethod(
            registry_pb2.GetMethodRequest(name="casefile.create"), timeout=5, metadata=metadata)
        policies = await policies_pb2_grpc.PolicyEngineStub(channel).ListPolicies(
            policies_pb2.ListPoliciesRequest(), timeout=5, metadata=metadata)
        session = await sessions_pb2_grpc.SessionOrchestratorStub(channel).CreateSession(
            sessions_pb2.CreateSessionRequest(user_id="grpc-user"), timeout=5,
            metadata=metadata)
    assert method.method.name == "casefile.create"
    assert policies.policies
    assert session.session.session_id
