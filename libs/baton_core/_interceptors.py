"""The server interceptor chain shared by every service.

Errors: a BatonError becomes its status with details; any other exception is
logged with its traceback and answered as INTERNAL with a one-line message, so
callers never see UNKNOWN or a stack trace.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import grpc

from ._errors import BatonError, InvalidArgument

log = logging.getLogger("baton.rpc")


async def _abort(context: grpc.aio.ServicerContext, method: str, exc: BaseException) -> None:
    if isinstance(exc, BatonError):
        await context.abort(exc.code, exc.message, exc.trailing_metadata())
    log.exception("unhandled error in %s", method, exc_info=exc)
    await context.abort(grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}: {exc}")


class _Undecodable:
    """What a request that does not parse (invalid UTF-8 in a string, nesting past
    protobuf's recursion limit, garbage) becomes, so the handler can answer
    INVALID_ARGUMENT instead of gRPC's UNKNOWN and a logged traceback."""

    __slots__ = ("why",)

    def __init__(self, why: str) -> None:
        self.why = why


def _tolerant(deserializer):
    if deserializer is None:
        return None

    def deserialize(data: bytes):
        try:
            return deserializer(data)
        except Exception as exc:  # noqa: BLE001 - DecodeError and whatever a parser raises
            return _Undecodable(str(exc) or type(exc).__name__)

    return deserialize


async def _refuse(context: grpc.aio.ServicerContext, request: _Undecodable) -> None:
    error = InvalidArgument(
        f"the request could not be read: {request.why} (strings must be UTF-8; "
        "messages may nest at most 100 levels)", reason="UNDECODABLE_REQUEST")
    await context.abort(error.code, error.message, error.trailing_metadata())


def _wrap_unary(fn, method: str):
    async def handler(request, context):
        if isinstance(request, _Undecodable):
            await _refuse(context, request)
        try:
            return await fn(request, context)
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except Exception as exc:  # noqa: BLE001 - mapped to a status in one place
            await _abort(context, method, exc)

    return handler


def _wrap_stream(fn, method: str):
    async def handler(request, context):
        if isinstance(request, _Undecodable):
            await _refuse(context, request)
        try:
            async for item in fn(request, context):
                yield item
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except Exception as exc:  # noqa: BLE001
            await _abort(context, method, exc)

    return handler


class WrappedHandlers:
    """An interceptor's wrapped handlers by method, built once, not per call.

    The generated handlers are stable objects; one rebuilt per call (by an inner
    interceptor that wraps afresh) is wrapped afresh so nothing of another call
    leaks.
    """

    def __init__(self) -> None:
        self._by_method: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    def get(self, method: str, handler: grpc.RpcMethodHandler,
            wrap: Callable[[grpc.RpcMethodHandler], grpc.RpcMethodHandler]
            ) -> grpc.RpcMethodHandler:
        cached = self._by_method.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = wrap(handler)
        self._by_method[method] = (handler, wrapped)
        return wrapped


class ErrorInterceptor(grpc.aio.ServerInterceptor):
    """Maps exceptions raised by servicers to gRPC statuses."""

    def __init__(self) -> None:
        self._wrapped = WrappedHandlers()

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        return self._wrapped.get(method, handler, lambda h: self._wrap(h, method))

    @staticmethod
    def _wrap(handler, method: str):
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                _wrap_unary(handler.unary_unary, method),
                request_deserializer=_tolerant(handler.request_deserializer),
                response_serializer=handler.response_serializer)
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                _wrap_stream(handler.unary_stream, method),
                request_deserializer=_tolerant(handler.request_deserializer),
                response_serializer=handler.response_serializer)
        return handler
