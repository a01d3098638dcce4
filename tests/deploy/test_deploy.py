"""deploy/: the gateway configs agree with their template, Envoy and the protos;
the Kubernetes and compose topologies agree with the gateway and each other.

Schema validation of the manifests is `make deploy-check` (kubernetes-validate
and check-jsonschema, offline); these tests check what schemas cannot.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml
from google.api import annotations_pb2
from google.protobuf import descriptor_pb2

from baton_cli._gateway import (
    CONTAINER_DESCRIPTOR,
    DEPLOYMENTS,
    REPO_ROOT,
    TEMPLATE,
    build_descriptor,
    deploy_configs,
    find_binary,
    http_filter_config,
    load_template,
    transcoder_config,
)
from baton_core import constants as c
from baton_core._server import MAX_MESSAGE_BYTES, MAX_PENDING_CALLS, SERVER_OPTIONS

DEPLOY = REPO_ROOT / "deploy"
_TRANSCODER = "envoy.filters.http.grpc_json_transcoder"
HEALTH_SERVICE = {"registry": c.REGISTRY_SERVICE, "orchestrator": c.ORCHESTRATOR_SERVICE,
                  "sessions": c.SESSIONS_SERVICE}
# Workers and hooks are called by the orchestrator, never through the gateway.
NOT_BEHIND_THE_GATEWAY = {c.PROVIDER_SERVICE, "baton.hook.v1.Hook"}


@pytest.fixture(scope="module")
def descriptor(tmp_path_factory) -> Path:
    return build_descriptor(tmp_path_factory.mktemp("descriptor") / "descriptor.binpb")


@pytest.fixture(scope="module")
def k8s() -> dict[tuple[str, str], dict]:
    docs = {}
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            docs[doc["kind"], doc["metadata"]["name"]] = doc
    return docs


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose" / "docker-compose.yaml").read_text())


def split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


def test_generated_gateway_configs_match_the_template():
    for path, text in deploy_configs().items():
        assert path.read_text() == text, (
            f"{path.relative_to(REPO_ROOT)} is stale: run `make deploy-configs`")


def _gateway_configs() -> dict[str, dict]:
    compose = yaml.safe_load((DEPLOY / "compose" / "envoy.yaml").read_text())
    config_map = yaml.safe_load((DEPLOY / "k8s" / "gateway-config.yaml").read_text())
    return {"template": load_template(), "compose": compose,
            "k8s": yaml.safe_load(config_map["data"]["envoy.yaml"])}


@pytest.mark.parametrize("name", ["template", "compose", "k8s"])
def test_every_gateway_config_passes_envoy_validate(name, descriptor, tmp_path):
    config = _gateway_configs()[name]
    transcoder_config(config)["proto_descriptor"] = str(descriptor)
    path = tmp_path / "envoy.yaml"
    path.write_text(yaml.safe_dump(config))

    done = subprocess.run([find_binary("envoy"), "--mode", "validate", "--log-level", "warning",
                           "-c", str(path)], capture_output=True, text=True, check=False)

    assert done.returncode == 0, done.stdout + done.stderr


def test_the_transcoder_serves_every_service_that_has_http_routes(descriptor):
    files = descriptor_pb2.FileDescriptorSet.FromString(descriptor.read_bytes()).file
    with_routes = {
        f"{f.package}.{service.name}"
        for f in files if f.package.startswith("baton.") for service in f.service
        if any(m.options.HasExtension(annotations_pb2.http) for m in service.method)}
    config = load_template()

    assert set(transcoder_config(config)["services"]) == with_routes - NOT_BEHIND_THE_GATEWAY
    (listener,) = config["static_resources"]["listeners"]
    hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
    (vhost,) = hcm["route_config"]["virtual_hosts"]
    routed = {r["match"]["prefix"]: r["route"]["cluster"] for r in vhost["routes"]}
    for service in transcoder_config(config)["services"]:
        package = service.rsplit(".", 1)[0]
        assert routed[f"/{package}."] in {"registry", "orchestrator", "sessions"}, service


def test_upstream_clusters_speak_http2():
    for cluster in load_template()["static_resources"]["clusters"]:
        options = cluster["typed_extension_protocol_options"][
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
        assert "http2_protocol_options" in options["explicit_http_config"], cluster["name"]


def test_each_cluster_takes_as_many_requests_at_once_as_the_services_queue():
    for cluster in load_template()["static_resources"]["clusters"]:
        (limits,) = cluster["circuit_breakers"]["thresholds"]
        assert limits["max_requests"] == MAX_PENDING_CALLS, cluster["name"]
        assert limits["max_pending_requests"] == MAX_PENDING_CALLS, cluster["name"]


def test_the_gateway_takes_json_bodies_up_to_twice_the_services_message_limit():
    # JSON may take more bytes than the message it carries (escaped text);
    # a larger body is refused before it reaches a service.
    config = load_template()
    body_limit = http_filter_config(config, "request-body-limit")["extension_config"]

    assert body_limit["typed_config"]["max_request_bytes"] == 2 * MAX_MESSAGE_BYTES
    assert transcoder_config(config)["max_request_body_size"] == 2 * MAX_MESSAGE_BYTES
    assert transcoder_config(config)["max_response_body_size"] == 2 * MAX_MESSAGE_BYTES


def test_the_gateway_refuses_messages_over_the_services_receive_limit():
    # After the transcoder, on the gRPC message it made of the JSON: the
    # limit is the one every service's gRPC server has.
    config = load_template()
    (listener,) = config["static_resources"]["listeners"]
    names = [f["name"] for f in
             listener["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"]]
    lua = http_filter_config(config, "message-limit")["extension_config"]["typed_config"][
        "default_source_code"]["inline_string"]
    (limit,) = re.findall(r"^local MAX_MESSAGE_BYTES = (\d+)$", lua, re.MULTILINE)

    assert names.index("message-limit") == names.index(_TRANSCODER) + 1
    assert int(limit) == MAX_MESSAGE_BYTES
    assert dict(SERVER_OPTIONS)["grpc.max_receive_message_length"] == MAX_MESSAGE_BYTES


@pytest.mark.parametrize("kind", sorted(HEALTH_SERVICE))
def test_each_k8s_service_has_a_deployment_a_service_and_grpc_health_probes(k8s, kind):
    host, port = split(DEPLOYMENTS["k8s"].upstreams[kind])
    deployment = k8s["Deployment", host]
    service = k8s["Service", host]
    pod = deployment["spec"]["template"]
    (container,) = pod["spec"]["containers"]

    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod["metadata"][
        "labels"].items()
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert [p["port"] for p in service["spec"]["ports"]] == [port]
    assert [p["containerPort"] for p in container["ports"]] == [port]
    assert container["args"] == ["serve", kind]
    assert container["readinessProbe"]["grpc"] == {"port": port,
                                                   "service": HEALTH_SERVICE[kind]}
    assert container["livenessProbe"]["grpc"] == {"port": port}
    env = {e["name"]: e for e in container["env"]}
    assert env["BATON_LISTEN"]["value"] == f"0.0.0.0:{port}"


@pytest.mark.parametrize("kind", sorted(HEALTH_SERVICE))
def test_k8s_datastores_come_from_the_secret(k8s, kind):
    secret = k8s["Secret", "baton-datastores"]
    host, _ = split(DEPLOYMENTS["k8s"].upstreams[kind])
    (container,) = k8s["Deployment", host]["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}

    for name in ("BATON_DATABASE_URL", "REDIS_URL"):
        ref = env[name]["valueFrom"]["secretKeyRef"]
        assert ref["name"] == "baton-datastores"
        assert ref["key"] in secret["stringData"]
    assert env["BATON_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["key"] == (
        f"{kind}-database-url")


def _k8s_env(k8s, name: str) -> dict[str, dict]:
    (container,) = k8s["Deployment", name]["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e for e in container["env"]}


def test_k8s_services_share_one_jwt_secret_and_the_worker_has_a_token(k8s):
    secret = k8s["Secret", "baton-auth"]
    refs = {kind: _k8s_env(k8s, split(DEPLOYMENTS["k8s"].upstreams[kind])[0])[
        "BATON_JWT_SECRET"]["valueFrom"]["secretKeyRef"] for kind in HEALTH_SERVICE}
    assert all(ref == {"name": "baton-auth", "key": "jwt-secret"} for ref in refs.values()), refs
    worker = _k8s_env(k8s, "baton-example-worker")["BATON_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert worker["name"] == "baton-auth"
    assert {"jwt-secret", worker["key"]} <= secret["stringData"].keys()
    config = k8s["ConfigMap", "baton-config"]["data"]
    # Registry and sessions send their audit records to the orchestrator.
    assert config["BATON_AUTH"] == "on"
    assert config["BATON_ORCHESTRATOR_ADDR"] == DEPLOYMENTS["k8s"].upstreams["orchestrator"]


def test_k8s_orchestrator_replicas_are_named_after_their_pods(k8s):
    # Unique among live replicas, and kept across a container restart (its runs
    # resume at once); a fixed name would make two replicas one.
    env = _k8s_env(k8s, "baton-orchestrator")["BATON_REPLICA_ID"]
    assert env["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}


def test_compose_services_share_one_jwt_secret_and_the_worker_has_a_token(compose):
    secrets = {compose["services"][split(address)[0]]["environment"]["BATON_JWT_SECRET"]
               for address in DEPLOYMENTS["compose"].upstreams.values()}
    assert len(secrets) == 1 and secrets.pop().startswith("${BATON_JWT_SECRET")
    assert all(compose["services"][split(address)[0]]["environment"]["BATON_AUTH"] == "on"
               for address in DEPLOYMENTS["compose"].upstreams.values())
    assert compose["services"]["worker"]["environment"]["BATON_TOKEN"].startswith("${")


def test_k8s_service_addresses_match_the_services(k8s):
    config = k8s["ConfigMap", "baton-config"]["data"]
    for kind, address in DEPLOYMENTS["k8s"].upstreams.items():
        assert config[f"BATON_{kind.upper()}_ADDR"] == address
        host, port = split(address)
        assert [p["port"] for p in k8s["Service", host]["spec"]["ports"]] == [port]


def test_k8s_gateway_mounts_its_config_and_the_descriptor(k8s):
    pod = k8s["Deployment", "baton-gateway"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    maps = {v["name"]: v["configMap"]["name"] for v in pod["volumes"]}

    assert ("ConfigMap", maps["config"]) in k8s
    assert container["args"][:2] == ["-c", f"{mounts['config']}/envoy.yaml"]
    assert maps["descriptor"] == "baton-gateway-descriptor"
    assert f"{mounts['descriptor']}/descriptor.binpb" == CONTAINER_DESCRIPTOR
    _, port = split(DEPLOYMENTS["k8s"].listen)
    assert [p["containerPort"] for p in container["ports"]] == [port]
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"


@pytest.mark.parametrize("kind", sorted(HEALTH_SERVICE))
def test_compose_runs_each_service_where_the_gateway_looks_for_it(compose, kind):
    host, port = split(DEPLOYMENTS["compose"].upstreams[kind])
    service = compose["services"][host]

    assert service["command"] == ["serve", kind]
    assert service["environment"]["BATON_LISTEN"] == f"0.0.0.0:{port}"
    assert f"127.0.0.1:{port}" in " ".join(service["healthcheck"]["test"])
    for other, address in DEPLOYMENTS["compose"].upstreams.items():
        assert service["environment"][f"BATON_{other.upper()}_ADDR"] == address
    assert "postgres" in service["environment"]["BATON_DATABASE_URL"]
    assert service["environment"]["REDIS_URL"].startswith("redis://redis:")


def test_compose_gateway_mounts_the_generated_config_and_the_descriptor(compose):
    gateway = compose["services"]["gateway"]
    mounts = dict(volume.rsplit(":", 1)[0].split(":", 1) for volume in gateway["volumes"])

    assert mounts["./envoy.yaml"] == gateway["command"][2]
    assert mounts["../envoy/descriptor.binpb"] == CONTAINER_DESCRIPTOR
    assert set(gateway["depends_on"]) == set(DEPLOYMENTS["compose"].upstreams)


def test_the_template_is_the_file_the_makefile_validates():
    assert "-c deploy/envoy/envoy.yaml" in (REPO_ROOT / "Makefile").read_text()
    assert TEMPLATE == DEPLOY / "envoy" / "envoy.yaml"
