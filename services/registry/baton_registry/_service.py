"""The MethodRegistry servicer: checks requests, calls the stores, converts replies."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

from baton.registry.v1 import registry_pb2 as pb
from baton.registry.v1 import registry_pb2_grpc as pb_grpc
from baton_core import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    batch_length,
    datetime_to_timestamp,
    decode_page_token,
    duration_to_seconds,
    encode_page_token,
    page_size,
    struct_to_dict,
    utcnow,
)

from . import _convert as convert
from . import _mask as mask
from . import _search as search
from . import _validation as check
from ._constants import DEFAULT_PAGE_SIZE, DEFAULT_SEARCH_SIZE, MAX_PAGE_SIZE, PAGE_BYTES
from ._leases import LeaseStore
from ._models import Method, WorkerLease
from ._store import MethodStore
from ._tools import ToolStore
from ._watch import Watcher


class RegistryServicer(pb_grpc.MethodRegistryServicer):
    """Implements baton.registry.v1.MethodRegistry; errors are BatonErrors."""

    def __init__(self, methods: MethodStore, tools: ToolStore, leases: LeaseStore,
                 watcher: Watcher, lease_ttl: float) -> None:
        self._methods = methods
        self._tools = tools
        self._leases = leases
        self._watcher = watcher
        self._lease_ttl = lease_ttl

    async def RegisterMethod(self, request, context):
        method = convert.method_from_proto(request.method)
        ttl = duration_to_seconds(request.lease_ttl)
        check.require(check.check_method(method) + check.check_worker(
            request.worker_id, request.address, ttl, required=False),
            f"invalid method {method.name!r}" if method.name else "invalid method")
        lease = self._lease(request.worker_id, request.address, ttl) if request.worker_id else None
        _keep_tools(method, await self._tools.for_method(method.name))
        stored, created = await self._methods.register(method.with_default_domain(), lease)
        return pb.RegisterMethodResponse(method=convert.method_to_proto(stored), created=created)

    async def GetMethod(self, request, context):
        return pb.GetMethodResponse(method=convert.method_to_proto(await self._get(request.name)))

    async def ListMethods(self, request, context):
        check.require(check.check_length(request.domain, "domain")
                      + check.check_length(request.tag, "tag"), "invalid filter")
        size = page_size(request.page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        scope = f"methods\0{request.domain}\0{request.tag}"
        after = decode_page_token(request.page_token, scope, after=str).get("after", "")
        found = await self._methods.find(domain=request.domain, tag=request.tag, after=after,
                                         limit=size + 1)
        page = [convert.method_to_proto(m) for m in found[:size]]
        # However large the schemas, a reply stays well under the message limit.
        fits = batch_length(page, PAGE_BYTES)
        more = len(found) > size or fits < len(page)
        page = page[:fits]
        token = encode_page_token({"after": page[-1].name}, scope) if more else ""
        return pb.ListMethodsResponse(methods=page, next_page_token=token)

    async def SearchMethods(self, request, context):
        check.require(check.check_length(request.query, "query", check.MAX_QUERY),
                      "query is too long")
        if not search.words(request.query):
            raise InvalidArgument("query must contain a word",
                                  violations=[("query", "must contain a letter or digit")])
        size = page_size(request.page_size, DEFAULT_SEARCH_SIZE, MAX_PAGE_SIZE)
        hits = search.rank(await self._methods.find(), request.query, size)
        return pb.SearchMethodsResponse(results=[
            pb.SearchMethodsResult(method=convert.method_to_proto(m), score=s) for m, s in hits])

    async def UpdateMethod(self, request, context):
        name = request.method.name
        check.require(check.check_method_name(name, "method.name"), "invalid method name")
        paths = mask.resolve(request.update_mask.paths,
                             convert.populated_paths(request.method))
        patch = convert.method_from_proto(request.method)
        tools = await self._tools.for_method(name)

        def apply(current: Method) -> Method:
            updated = mask.apply(current, patch, paths)
            check.require(check.check_method(updated), "invalid method")
            _keep_tools(updated, tools)
            return updated

        updated = await self._methods.update(name, apply)
        return pb.UpdateMethodResponse(method=convert.method_to_proto(updated))

    async def DeleteMethod(self, request, context):
        name = check.lookup(request.name)
        tools = await self._tools.for_method(name)
        if tools:
            names = ", ".join(sorted(t.name for t in tools))
            raise FailedPrecondition(
                f"tools map onto {name!r} ({names}): delete them first (DeleteTool)",
                reason="METHOD_HAS_TOOLS", metadata={"method": name, "tools": names})
        await self._methods.delete(name)
        return pb.DeleteMethodResponse()

    async def ValidateParameters(self, request, context):
        method = await self._get(request.name)
        violations = check.check_params(method.input_schema, struct_to_dict(request.params))
        return pb.ValidateParametersResponse(
            valid=not violations,
            violations=[pb.FieldViolation(field=f, description=d) for f, d in violations])

    async def RegisterTool(self, request, context):
        tool = convert.tool_from_proto(request.tool)
        check.require(check.check_tool(tool), "invalid tool")
        method = await self._methods.get(tool.method)
        if method is None:
            raise NotFound(f"method {tool.method!r} not found", reason="METHOD_NOT_FOUND",
                           metadata={"method": tool.method})
        check.require(check.check_tool_mapping(tool, method), "invalid tool")
        return pb.RegisterToolResponse(tool=convert.tool_to_proto(await self._tools.put(tool)))

    async def GetTool(self, request, context):
        tool = await self._tools.get(check.lookup(request.name))
        if tool is None:
            raise NotFound(f"tool {request.name!r} not found", reason="TOOL_NOT_FOUND",
                           metadata={"tool": request.name})
        return pb.GetToolResponse(tool=convert.tool_to_proto(tool))

    async def DeleteTool(self, request, context):
        name = check.lookup(request.name)
        if not await self._tools.delete(name):
            raise NotFound(f"tool {name!r} not found", reason="TOOL_NOT_FOUND",
                           metadata={"tool": name})
        return pb.DeleteToolResponse()

    async def ListTools(self, request, context):
        size = page_size(request.page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        after = decode_page_token(request.page_token, "tools", after=str).get("after", "")
        found = await self._tools.find(after=after, limit=size + 1)
        page = found[:size]
        token = encode_page_token({"after": page[-1].name}, "tools") if len(found) > size else ""
        return pb.ListToolsResponse(tools=[convert.tool_to_proto(t) for t in page],
                                    next_page_token=token)

    async def WatchMethods(self, request, context) -> AsyncIterator[pb.WatchMethodsResponse]:
        check.require(check.check_length(request.domain, "domain"), "invalid filter")
        async for change in self._watcher.watch(request.domain):
            yield convert.change_to_proto(change)

    async def Heartbeat(self, request, context):
        ttl = duration_to_seconds(request.lease_ttl)
        check.require(check.check_worker(request.worker_id, request.address, ttl, required=True)
                      + [v for i, name in enumerate(request.method_names)
                         for v in check.check_length(name, f"method_names[{i}]")]
                      + ([("method_names", f"at most {check.MAX_HEARTBEAT_METHODS:,} names, not "
                           f"{len(request.method_names):,} (none renews every method of the "
                           "worker)")]
                         if len(request.method_names) > check.MAX_HEARTBEAT_METHODS else []),
                      "invalid heartbeat")
        lease = self._lease(request.worker_id, request.address, ttl)
        unknown = await self._leases.heartbeat(lease, list(request.method_names))
        return pb.HeartbeatResponse(lease_expire_time=datetime_to_timestamp(lease.expire_time),
                                    unknown_methods=unknown)

    async def _get(self, name: str) -> Method:
        method = await self._methods.get(check.lookup(name))
        if method is None:
            raise NotFound(f"method {name!r} not found", reason="METHOD_NOT_FOUND",
                           metadata={"method": name})
        return method

    def _lease(self, worker_id: str, address: str, ttl: float) -> WorkerLease:
        expire = utcnow() + dt.timedelta(seconds=ttl or self._lease_ttl)
        return WorkerLease(worker_id, address, expire)


def _keep_tools(method: Method, tools: list) -> None:
    """Refuses a new definition of `method` that would break the tools mapping onto it."""
    broken = check.tools_broken_by(method, tools)
    if broken:
        raise FailedPrecondition(
            f"the new input schema of {method.name!r} breaks tools that map onto it: "
            + "; ".join(f"{f}: {d}" for f, d in broken)
            + " (change or delete those tools first)",
            reason="TOOL_MAPPING_BROKEN", violations=broken)
