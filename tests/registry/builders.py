"""Small builders for request messages used across the registry tests."""

from __future__ import annotations

from typing import Any

import grpc

from baton.registry.v1 import registry_pb2 as pb
from baton_core import BatonError, dict_to_struct, from_rpc_error, seconds_to_duration


def method(name: str, *, description: str = "", tags: tuple[str, ...] = (),
           input_schema: dict[str, Any] | None = None, **fields) -> pb.Method:
    message = pb.Method(name=name, description=description, tags=tags, **fields)
    if input_schema is not None:
        message.input_schema.CopyFrom(dict_to_struct(input_schema))
    return message


async def register(stub, name: str, *, worker_id: str = "", address: str = "",
                   lease_ttl: float = 0.0, **fields) -> pb.RegisterMethodResponse:
    return await stub.RegisterMethod(pb.RegisterMethodRequest(
        method=method(name, **fields), worker_id=worker_id, address=address,
        lease_ttl=seconds_to_duration(lease_ttl)))


async def rpc_error(call) -> BatonError:
    """The BatonError an awaited call fails with (fails the test if it succeeds)."""
    try:
        await call
    except grpc.aio.AioRpcError as err:
        return from_rpc_error(err)
    raise AssertionError("the call succeeded")
