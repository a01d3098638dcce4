"""ProviderClient: calls a worker's MethodProvider.Invoke directly."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import grpc

from baton.provider.v1 import provider_pb2, provider_pb2_grpc
from baton_core import dict_to_struct

from ._channel import ClientLifecycle
from ._context import InvocationContext


class ProviderClient(ClientLifecycle):
    """Client of one worker, as the orchestrator uses it (no hooks, no policies).

    Takes the arguments of every client (see ClientLifecycle); address: the worker.
    """

    def _bind(self, channel: grpc.aio.Channel) -> None:
        self._stub = provider_pb2_grpc.MethodProviderStub(channel)


    async def invoke(self, method: str, params: Mapping[str, Any] | None = None, *,
                     version: str = "", context: InvocationContext | None = None,
                     timeout: float | None = None) -> provider_pb2.InvokeResponse:
        """Executes `method` on the worker; `timeout` becomes the call's deadline."""
        request = provider_pb2.InvokeRequest(
            method=method, version=version, params=dict_to_struct(dict(params or {})),
            context=(context or InvocationContext()).to_proto())
        return await self._conn.unary(self._stub.Invoke, request, timeout)
