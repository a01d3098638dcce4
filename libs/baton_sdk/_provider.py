"""MethodProvider: the servicer that runs decorated methods for Invoke calls.

Every failure leaves here as a BatonError, which the shared error interceptor
turns into a status with ErrorInfo details: callers never see UNKNOWN or a
traceback.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any

import grpc
from pydantic import BaseModel, ValidationError

from baton.provider.v1 import provider_pb2, provider_pb2_grpc
from baton_core import (
    BatonError,
    DeadlineExceeded,
    Internal,
    InvalidArgument,
    NotFound,
    Service,
    constants,
    dict_to_struct,
    error_for_code,
    field_path,
    status_code_named,
    struct_to_dict,
)

from ._context import InvocationContext
from ._method import MethodDefinition

log = logging.getLogger("baton.worker")

METHOD_FAILED = "METHOD_FAILED"


class MethodProvider(provider_pb2_grpc.MethodProviderServicer):
    """Serves `baton.provider.v1.MethodProvider` for a list of methods.

    A Worker hosts one. To add methods to a server you already run, host
    `service()` in a `baton_core.GrpcServer`: its error interceptor is what
    turns the BatonErrors raised here into statuses with details.

    Args:
        methods: Functions decorated with @method (or their definitions).

    Raises:
        ValueError: Two methods share a name.
    """

    def __init__(self, methods: Iterable[Callable[..., Any] | MethodDefinition]) -> None:
        self._methods: dict[str, MethodDefinition] = {}
        for item in methods:
            definition = (item if isinstance(item, MethodDefinition)
                          else MethodDefinition.from_callable(item))
            if definition.name in self._methods:
                raise ValueError(f"method {definition.name!r} is given twice")
            self._methods[definition.name] = definition

    @property
    def definitions(self) -> list[MethodDefinition]:
        return list(self._methods.values())

    def service(self) -> Service:
        return Service(constants.PROVIDER_SERVICE, self,
                       provider_pb2_grpc.add_MethodProviderServicer_to_server)

    async def Invoke(self, request: provider_pb2.InvokeRequest,  # noqa: N802 - gRPC name
                     context: grpc.aio.ServicerContext) -> provider_pb2.InvokeResponse:
        definition = self._methods.get(request.method)
        if definition is None:
            raise NotFound(f"method {request.method!r} is not served by this worker",
                           reason="METHOD_NOT_SERVED", metadata={"method": request.method})
        if request.version and request.version != definition.version:
            raise NotFound(f"{definition.name} version {request.version} is not served by "
                           f"this worker (it serves {definition.version})",
                           reason="VERSION_NOT_SERVED", metadata={"method": definition.name})
        remaining = context.time_remaining()
        if remaining is not None and remaining <= 0:
            raise DeadlineExceeded(f"the deadline of {definition.name} passed before it started")
        params = _validate_params(definition, request.params)
        timeout = remaining if remaining is not None else definition.timeout
        ctx = InvocationContext.from_proto(request.context, method=definition.name,
                                           version=definition.version, timeout=timeout)
        result = await _run(definition, params, ctx, timeout)
        return provider_pb2.InvokeResponse(result=dict_to_struct(_dump_result(definition, result)))


def _validate_params(definition: MethodDefinition, params) -> BaseModel:
    try:
        return definition.input_model.model_validate(struct_to_dict(params))
    except ValidationError as exc:
        violations = [(field_path("params", err["loc"]), err["msg"])
                      for err in exc.errors(include_url=False)]
        summary = "; ".join(f"{field}: {desc}" for field, desc in violations)
        raise InvalidArgument(f"invalid params for {definition.name}: {summary}",
                              violations=violations) from None


async def _run(definition: MethodDefinition, params: BaseModel, ctx: InvocationContext,
               timeout: float | None) -> Any:
    args = (params, ctx) if definition.takes_context else (params,)
    deadline = asyncio.timeout(timeout)
    try:
        async with deadline:
            return await definition.fn(*args)
    except BatonError:
        raise
    except TimeoutError as exc:
        if deadline.expired():
            log.warning("%s did not finish within %.3gs", definition.name, timeout)
            raise DeadlineExceeded(
                f"{definition.name} did not finish within {timeout:.3g}s") from None
        raise _method_failed(definition, exc) from exc
    except Exception as exc:  # noqa: BLE001 - every failure becomes one clear status
        raise _method_failed(definition, exc) from exc


def _method_failed(definition: MethodDefinition, exc: Exception) -> BatonError:
    """The error a caller sees for an exception a method raised.

    An exception class may choose the status by declaring `grpc_code` (a
    grpc.StatusCode or its name); otherwise it is INTERNAL.
    """
    log.error("%s failed", definition.name, exc_info=exc)
    code = getattr(type(exc), "grpc_code", grpc.StatusCode.INTERNAL)
    if isinstance(code, str):
        code = status_code_named(code) or grpc.StatusCode.INTERNAL
    if not isinstance(code, grpc.StatusCode) or code in (grpc.StatusCode.OK,
                                                          grpc.StatusCode.UNKNOWN):
        code = grpc.StatusCode.INTERNAL
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return error_for_code(code, message, reason=METHOD_FAILED,
                          metadata={"exception": type(exc).__name__})


def _dump_result(definition: MethodDefinition, result: Any) -> dict[str, Any]:
    model = definition.output_model
    if not isinstance(result, model):
        try:
            result = model.model_validate(result)
        except ValidationError as exc:
            log.error("%s returned a bad result: %s", definition.name, exc)
            raise Internal(f"{definition.name} returned a result that does not match "
                           f"{model.__name__}", reason="INVALID_RESULT") from None
    return result.model_dump(mode="json")
