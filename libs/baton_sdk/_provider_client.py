"""ProviderClient: calls a worker's MethodProvider.Invoke directly."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from baton.provider.v1 import provider_pb2, provider_pb2_grpc
from baton_core import dict_to_struct

from ._channel import DEFAULT_TIMEOUT, ClientLifecycle, Connection
from ._context import InvocationContext


class ProviderClient(ClientLifecycle):
    """Client of one worker, as the orchestrator uses it (no hooks, no policies).

    Args:
        address: host:port of the worker.
        token: Bearer token sent with every call; None: BATON_TOKEN when set.
        metadata: Extra metadata sent with every call.
        timeout: Default deadline of calls in seconds; None for none.
    """

    def __init__(self, address: str, *, token: str | None = None,
                 metadata: Sequence[tuple[str, str]] = (),
                 timeout: float | None = DEFAULT_TIMEOUT) -> None:
        self._conn = Connection(address, token=token, metadata=metadata, timeout=timeout)
        self._stub = provider_pb2_grpc.MethodProviderStub(self._conn.channel)


    async def invoke(self, method: str, params: Mapping[str, Any] | None = None, *,
                     version: str = "", context: InvocationContext | None = None,
                     timeout: float | None = None) -> provider_pb2.InvokeResponse:
        """Executes `method` on the worker; `timeout` becomes the call's deadline."""
        request = provider_pb2.InvokeRequest(
            method=method, version=version, params=dict_to_struct(dict(params or {})),
            context=(context or InvocationContext()).to_proto())
        return await self._conn.unary(self._stub.Invoke, request, timeout)
