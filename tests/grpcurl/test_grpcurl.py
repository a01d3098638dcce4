"""grpcurl against every port: reflection, describe, health, calls with metadata."""

from __future__ import annotations

import json

import pytest
from gateway._platform import json_values

from baton_core import constants as c

SERVICES_BY_PORT = {
    "registry": {c.REGISTRY_SERVICE},
    "orchestrator": {c.ORCHESTRATOR_SERVICE, c.HOOK_MANAGER_SERVICE, c.POLICY_ENGINE_SERVICE,
                     "baton.orchestrator.v1.Workflows", "baton.orchestrator.v1.AuditLog",
                     "baton.orchestrator.v1.CircuitBreakers"},
    "sessions": {c.SESSIONS_SERVICE},
    "worker": {c.PROVIDER_SERVICE},
}


@pytest.fixture
def auth(running) -> dict[str, str]:
    """An admin's `authorization: Bearer` header (the platform runs with auth on)."""
    return running.headers()


@pytest.mark.parametrize("port", sorted(SERVICES_BY_PORT))
async def test_reflection_lists_the_services_of_every_port(grpcurl, running, port):
    done = await grpcurl.text("-plaintext", running.addr(port), "list")

    listed = set(done.stdout.split())
    assert SERVICES_BY_PORT[port] <= listed
    assert {"grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"} <= listed


@pytest.mark.parametrize("port", sorted(SERVICES_BY_PORT))
async def test_health_is_serving_on_every_port_and_for_every_service(grpcurl, running, port):
    overall = await grpcurl.call(running.addr(port), "grpc.health.v1.Health/Check")
    assert overall == {"status": "SERVING"}
    for service in SERVICES_BY_PORT[port]:
        one = await grpcurl.call(running.addr(port), "grpc.health.v1.Health/Check",
                                 {"service": service})
        assert one == {"status": "SERVING"}, service


async def test_describe_shows_a_methods_signature_and_its_messages(grpcurl, running):
    service = await grpcurl.text("-plaintext", running.addr("orchestrator"), "describe",
                                 c.ORCHESTRATOR_SERVICE)
    assert ("rpc Dispatch ( .baton.orchestrator.v1.DispatchRequest ) returns "
            "( .baton.orchestrator.v1.DispatchResponse )") in service.stdout

    request = await grpcurl.text("-plaintext", running.addr("orchestrator"), "describe",
                                 "baton.orchestrator.v1.DispatchRequest")
    assert "string operation = 1;" in request.stdout


async def test_describe_a_method_by_name_through_reflection(grpcurl, running):
    done = await grpcurl.text("-plaintext", running.addr("orchestrator"), "describe",
                              f"{c.ORCHESTRATOR_SERVICE}.Dispatch")
    assert "is a method" in done.stdout
    assert "rpc Dispatch" in done.stdout


async def test_describe_a_method_by_name_from_the_descriptor_set(grpcurl, running):
    descriptor = running.platform.config.data_dir / "gateway" / "descriptor.binpb"
    done = await grpcurl.text("-protoset", str(descriptor), "describe",
                              f"{c.ORCHESTRATOR_SERVICE}.Dispatch")

    assert "is a method" in done.stdout
    assert "Dispatch runs one operation" in done.stdout  # comments are kept


async def test_dispatch_with_json_and_an_authorization_header(grpcurl, running, auth):
    reply = await grpcurl.call(
        running.addr("orchestrator"), f"{c.ORCHESTRATOR_SERVICE}/Dispatch",
        {"operation": "casefile.create", "params": {"title": "Broken boiler"}}, auth)

    assert reply["result"]["casefile_id"].startswith("cf_")
    assert reply["metadata"]["worker_address"] == running.addr("worker")


async def test_start_run_with_json_and_an_authorization_header_then_watch_it(
        grpcurl, running, auth):
    started = await grpcurl.call(
        running.addr("orchestrator"), "baton.orchestrator.v1.Workflows/StartRun",
        {"definition": {"name": "hello", "steps": [
            {"step_id": "echo", "method": "demo.echo", "params": {"value": "hello"}}]},
         "input": {"who": "grpcurl"}}, auth)
    run_id = started["run"]["run_id"]

    watched = await grpcurl.text("-plaintext", "-H", f"authorization: {auth['authorization']}",
                                 "-d", json.dumps({"run_id": run_id}),
                                 running.addr("orchestrator"),
                                 "baton.orchestrator.v1.Workflows/WatchRun")
    events = [value["event"] for value in json_values(watched.stdout)]
    assert events[-1]["run_status"] == "STATUS_SUCCEEDED"


async def test_errors_show_the_grpc_code_and_message(grpcurl, running, auth):
    done = await grpcurl.text(
        "-plaintext", "-H", f"authorization: {auth['authorization']}",
        "-d", json.dumps({"name": "no.such_method"}), running.addr("registry"),
        f"{c.REGISTRY_SERVICE}/GetMethod", ok=False)

    assert done.returncode != 0
    assert "Code: NotFound" in done.stderr


async def test_grpcurl_reaches_the_services_through_the_gateway_with_a_protoset(
        grpcurl, running, auth):
    descriptor = running.platform.config.data_dir / "gateway" / "descriptor.binpb"
    done = await grpcurl.text(
        "-plaintext", "-protoset", str(descriptor),
        "-H", f"authorization: {auth['authorization']}",
        "-d", json.dumps({"name": "casefile.create"}),
        running.addr("gateway"), f"{c.REGISTRY_SERVICE}/GetMethod")

    assert json.loads(done.stdout)["method"]["name"] == "casefile.create"


async def test_a_call_without_a_token_is_unauthenticated(grpcurl, running):
    done = await grpcurl.text(
        "-plaintext", "-d", json.dumps({"name": "casefile.create"}), running.addr("registry"),
        f"{c.REGISTRY_SERVICE}/GetMethod", ok=False)

    assert done.returncode != 0
    assert "Code: Unauthenticated" in done.stderr
    assert "authorization: Bearer" in done.stderr
