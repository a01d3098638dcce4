"""Every RPC of every Baton service refuses callers without the right credentials.

The RPCs come from the generated descriptors, so an RPC added to a .proto is
walked here without anyone remembering to add it.
"""

from __future__ import annotations

import asyncio
import importlib
import pkgutil

import grpc
import pytest
from google.protobuf import message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

import baton
from baton_core import access

# Contracts that other processes implement (workers, hook processes): not served here.
CONTRACTS = {"baton.provider.v1.MethodProvider", "baton.hook.v1.Hook"}
PROCESS = {"baton.registry.v1": "registry", "baton.sessions.v1": "sessions",
           "baton.orchestrator.v1": "orchestrator"}
HUMAN_ROLES = ("viewer", "worker", "user", "operator", "service")


def baton_methods():
    found = []
    for info in pkgutil.walk_packages(baton.__path__, "baton."):
        if not info.name.endswith("_pb2"):
            continue
        module = importlib.import_module(info.name)
        for service in module.DESCRIPTOR.services_by_name.values():
            if service.full_name in CONTRACTS:
                continue
            for method in service.methods:
                found.append((PROCESS[service.file.package], service.full_name, method))
    return found


METHODS = baton_methods()


def test_the_walk_finds_every_service():
    services = {s for _, s, _ in METHODS}
    assert {"baton.registry.v1.MethodRegistry", "baton.sessions.v1.SessionOrchestrator",
            "baton.orchestrator.v1.Orchestrator", "baton.orchestrator.v1.HookManager",
            "baton.orchestrator.v1.PolicyEngine", "baton.orchestrator.v1.CircuitBreakers",
            "baton.orchestrator.v1.AuditLog", "baton.orchestrator.v1.Workflows"} <= services
    assert len(METHODS) > 50


async def call(channel: grpc.aio.Channel, service: str, method,
               metadata=()) -> grpc.StatusCode:
    """Calls `method` with an empty request; the status it ends with."""
    request_class = message_factory.GetMessageClass(method.input_type)
    response_class = message_factory.GetMessageClass(method.output_type)
    path = f"/{service}/{method.name}"
    kwargs = {"request_serializer": request_class.SerializeToString,
              "response_deserializer": response_class.FromString}
    try:
        if method.server_streaming:
            stream = channel.unary_stream(path, **kwargs)(request_class(), metadata=metadata,
                                                          timeout=5)
            try:
                await stream.read()
            finally:
                stream.cancel()
        else:
            await channel.unary_unary(path, **kwargs)(request_class(), metadata=metadata,
                                                      timeout=5)
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def refused_role(full_method: str) -> str:
    allowed = access.roles_for(full_method)
    return next(r for r in HUMAN_ROLES if r not in allowed)


def accepted_role(full_method: str) -> str:
    allowed = access.roles_for(full_method)
    return next((r for r in HUMAN_ROLES if r in allowed), "admin")


@pytest.mark.parametrize(("process", "service", "method"), METHODS,
                         ids=[f"{s.rsplit('.', 1)[1]}.{m.name}" for _, s, m in METHODS])
async def test_rpc_refuses_bad_credentials_and_accepts_good_ones(
        secured, secured_channels, auth_keys, process, service, method):
    channel = secured_channels[process]
    full = f"/{service}/{method.name}"
    bad = {
        "no credentials": (),
        "expired": auth_keys.bearer(ttl=-120),
        "wrong audience": auth_keys.bearer(aud="someone-else"),
        "wrong issuer": auth_keys.bearer(iss="someone-else"),
        "bad signature": (("authorization", "Bearer " + auth_keys.token()[:-4] + "AAAA"),),
        "unknown api key": (("x-api-key", "bk_not-a-key"),),
        "not a bearer": (("authorization", "Basic dXNlcjpwYXNz"),),
    }
    codes = await asyncio.gather(*(call(channel, service, method, md) for md in bad.values()))
    assert dict(zip(bad, codes, strict=True)) == {
        name: grpc.StatusCode.UNAUTHENTICATED for name in bad}

    wrong = refused_role(full)
    assert await call(channel, service, method,
                      auth_keys.bearer(roles=[wrong])) == grpc.StatusCode.PERMISSION_DENIED

    right = accepted_role(full)
    for metadata in (auth_keys.bearer(roles=[right]),
                     auth_keys.bearer(roles=[right], alg="RS256")):
        code = await call(channel, service, method, metadata)
        assert code not in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED,
                            grpc.StatusCode.UNIMPLEMENTED), (right, code)


@pytest.mark.parametrize("process", ["registry", "sessions", "orchestrator"])
async def test_health_and_reflection_need_no_credentials(secured, secured_channels, process):
    channel = secured_channels[process]
    health = await health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(), timeout=5)
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    stream = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5)
    async for reply in stream:
        names = {s.name for s in reply.list_services_response.service}
        assert any(n.startswith("baton.") for n in names)
        break
