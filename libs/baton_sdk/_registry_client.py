"""RegistryClient: typed async access to baton.registry.v1.MethodRegistry."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import grpc
from google.protobuf import field_mask_pb2

from baton.registry.v1 import registry_pb2 as pb
from baton.registry.v1 import registry_pb2_grpc
from baton_core import constants, dict_to_struct, seconds_to_duration

from ._channel import ClientLifecycle
from ._method import MethodDefinition

_IDEMPOTENT = [(constants.REGISTRY_SERVICE, name) for name in (
    "RegisterMethod", "GetMethod", "ListMethods", "SearchMethods", "ValidateParameters",
    "RegisterTool", "GetTool", "ListTools", "Heartbeat")]


class RegistryClient(ClientLifecycle):
    """Client of the method registry over one reused channel.

    Every method raises the BatonError subclass matching the status the
    registry returned (NotFound, InvalidArgument, Unavailable, ...).

    Takes the arguments of every client (see ClientLifecycle); address: the registry.
    """

    idempotent = _IDEMPOTENT

    def _bind(self, channel: grpc.aio.Channel) -> None:
        self._stub = registry_pb2_grpc.MethodRegistryStub(channel)


    async def register_method(self, method: pb.Method | MethodDefinition, *,
                              worker_id: str = "", address: str = "",
                              lease_ttl: float | None = None,
                              timeout: float | None = None) -> pb.Method:
        """Creates or replaces a method; with worker_id, also leases its endpoint."""
        if isinstance(method, MethodDefinition):
            method = method.to_proto()
        request = pb.RegisterMethodRequest(method=method, worker_id=worker_id, address=address)
        if lease_ttl:
            request.lease_ttl.CopyFrom(seconds_to_duration(lease_ttl))
        response = await self._conn.unary(self._stub.RegisterMethod, request, timeout)
        return response.method

    async def get_method(self, name: str, *, timeout: float | None = None) -> pb.Method:
        response = await self._conn.unary(
            self._stub.GetMethod, pb.GetMethodRequest(name=name), timeout)
        return response.method

    async def list_methods(self, *, domain: str = "", tag: str = "", page_size: int = 0,
                           page_token: str = "",
                           timeout: float | None = None) -> pb.ListMethodsResponse:
        """One page of methods; pass `next_page_token` back for the next."""
        request = pb.ListMethodsRequest(domain=domain, tag=tag, page_size=page_size,
                                        page_token=page_token)
        return await self._conn.unary(self._stub.ListMethods, request, timeout)

    async def search_methods(self, query: str, *, page_size: int = 0,
                             timeout: float | None = None) -> list[pb.SearchMethodsResult]:
        """Methods ranked by relevance to `query`, best first."""
        request = pb.SearchMethodsRequest(query=query, page_size=page_size)
        response = await self._conn.unary(self._stub.SearchMethods, request, timeout)
        return list(response.results)

    async def update_method(self, method: pb.Method, update_mask: Sequence[str], *,
                            timeout: float | None = None) -> pb.Method:
        """Changes the fields of `method` named in `update_mask` (e.g. ["description"])."""
        request = pb.UpdateMethodRequest(
            method=method, update_mask=field_mask_pb2.FieldMask(paths=list(update_mask)))
        response = await self._conn.unary(self._stub.UpdateMethod, request, timeout)
        return response.method

    async def delete_method(self, name: str, *, timeout: float | None = None) -> None:
        await self._conn.unary(self._stub.DeleteMethod, pb.DeleteMethodRequest(name=name), timeout)

    async def validate_parameters(self, name: str, params: Mapping[str, Any] | None, *,
                                  timeout: float | None = None,
                                  ) -> pb.ValidateParametersResponse:
        """Checks params against the method's input schema; `valid` plus violations."""
        request = pb.ValidateParametersRequest(name=name, params=dict_to_struct(dict(params or {})))
        return await self._conn.unary(self._stub.ValidateParameters, request, timeout)

    async def register_tool(self, name: str, *, method: str, description: str = "",
                            parameters_schema: Mapping[str, Any] | None = None,
                            parameter_mapping: Mapping[str, str] | None = None,
                            timeout: float | None = None) -> pb.Tool:
        """Creates or replaces a tool, an LLM-facing view of `method`."""
        tool = pb.Tool(name=name, method=method, description=description,
                       parameters_schema=dict_to_struct(dict(parameters_schema or {})),
                       parameter_mapping=dict(parameter_mapping or {}))
        response = await self._conn.unary(
            self._stub.RegisterTool, pb.RegisterToolRequest(tool=tool), timeout)
        return response.tool

    async def get_tool(self, name: str, *, timeout: float | None = None) -> pb.Tool:
        response = await self._conn.unary(self._stub.GetTool, pb.GetToolRequest(name=name), timeout)
        return response.tool

    async def list_tools(self, *, page_size: int = 0, page_token: str = "",
                         timeout: float | None = None) -> pb.ListToolsResponse:
        request = pb.ListToolsRequest(page_size=page_size, page_token=page_token)
        return await self._conn.unary(self._stub.ListTools, request, timeout)

    def watch_methods(self, *, domain: str = "") -> AsyncIterator[pb.WatchMethodsResponse]:
        """Streams every method as EXISTING, a SYNCED marker, then each change."""
        return self._conn.stream(self._stub.WatchMethods, pb.WatchMethodsRequest(domain=domain))

    async def heartbeat(self, worker_id: str, address: str, *,
                        method_names: Sequence[str] = (), lease_ttl: float | None = None,
                        timeout: float | None = None) -> pb.HeartbeatResponse:
        """Renews a worker's lease; `unknown_methods` lists names to register again."""
        request = pb.HeartbeatRequest(worker_id=worker_id, address=address,
                                      method_names=list(method_names))
        if lease_ttl:
            request.lease_ttl.CopyFrom(seconds_to_duration(lease_ttl))
        return await self._conn.unary(self._stub.Heartbeat, request, timeout)
