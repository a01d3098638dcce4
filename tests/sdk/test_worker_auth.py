"""A worker holding the platform's key lets only the orchestrator (or an admin) invoke."""

from __future__ import annotations

import secrets

import grpc
import pytest

from baton.provider.v1 import provider_pb2, provider_pb2_grpc
from baton_core import AuthConfig, dict_to_struct, issue_token, struct_to_dict

from .parcels import quote

AUTH = AuthConfig(enabled=True, secret=secrets.token_hex(32))


@pytest.fixture
async def guarded(start_worker):
    worker = await start_worker([quote], auth=AUTH)
    async with grpc.aio.insecure_channel(worker.address) as channel:
        yield provider_pb2_grpc.MethodProviderStub(channel)


def invoke(stub, token: str | None = None):
    metadata = (("authorization", f"Bearer {token}"),) if token else ()
    request = provider_pb2.InvokeRequest(
        method="parcel.quote", params=dict_to_struct({"weight_kg": 2, "destination": "NL"}))
    return stub.Invoke(request, metadata=metadata, timeout=5)


async def test_invoke_without_credentials_is_unauthenticated(guarded):
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await invoke(guarded)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_invoke_by_a_plain_user_is_refused(guarded):
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await invoke(guarded, issue_token(AUTH, "alice", ["user"]))
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_invoke_with_a_token_from_another_key_is_unauthenticated(guarded):
    other = AuthConfig(enabled=True, secret=secrets.token_hex(32))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await invoke(guarded, issue_token(other, "orchestrator", ["service"]))
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_the_orchestrators_service_token_is_served(guarded):
    reply = await invoke(guarded, issue_token(AUTH, "orchestrator", ["service"]))
    assert struct_to_dict(reply.result) == {"price": 4}


async def open_channel(stub, token: str | None = None):
    metadata = (("authorization", f"Bearer {token}"),) if token else ()
    call = stub.OpenChannel(metadata=metadata, timeout=5)
    await call.write(provider_pb2.OpenChannelRequest(invocations=[provider_pb2.Invocation(
        id=1, request=provider_pb2.InvokeRequest(
            method="parcel.quote",
            params=dict_to_struct({"weight_kg": 2, "destination": "NL"})))]))
    return call


@pytest.mark.parametrize(("token", "code"), [
    (None, grpc.StatusCode.UNAUTHENTICATED),
    (issue_token(AUTH, "alice", ["user"]), grpc.StatusCode.PERMISSION_DENIED),
])
async def test_open_channel_is_refused_like_invoke(guarded, token, code):
    with pytest.raises(grpc.aio.AioRpcError) as info:
        # The refusal can end the stream before the first write is done: then the
        # write raises it, else the first read does.
        call = await open_channel(guarded, token)
        await call.read()
    assert info.value.code() == code


async def test_open_channel_serves_the_orchestrators_service_token(guarded):
    call = await open_channel(guarded, issue_token(AUTH, "orchestrator", ["service"]))
    reply = await call.read()
    assert struct_to_dict(reply.completions[0].response.result) == {"price": 4}
    call.cancel()
