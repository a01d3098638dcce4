"""MethodProvider: the servicer that runs decorated methods for Invoke calls.

Every failure leaves here as a BatonError, which the shared error interceptor
turns into a status with ErrorInfo details: callers never see UNKNOWN or a
traceback.
"""

from __future__ import annotations

import asyncio
import dis
import functools
import logging
import signal
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
    ResourceExhausted,
    Service,
    Unavailable,
    batch_length,
    constants,
    dict_to_struct,
    error_for_code,
    field_path,
    not_json_numbers,
    status_code_named,
    struct_to_dict,
)

from ._channel import MAX_MESSAGE_BYTES
from ._context import InvocationContext
from ._method import MethodDefinition

log = logging.getLogger("baton.worker")

METHOD_FAILED = "METHOD_FAILED"
# Longest exception message passed on to the caller (gRPC bounds the trailers that
# carry it to 16 KiB).
_MAX_MESSAGE = 2000
# Largest result sent back: a message's limit less room for the envelope around it.
_MAX_RESULT_BYTES = MAX_MESSAGE_BYTES - 64 * 1024
# Seconds that cancelled calls and invocations may take to end before they are left
# to themselves (and a warning says so).
UNWIND_TIMEOUT = 1.0


class MethodProvider(provider_pb2_grpc.MethodProviderServicer):
    """Serves `baton.provider.v1.MethodProvider` for a list of methods.

    A Worker hosts one. To add methods to a server you already run, host
    `service()` in a `baton_core.GrpcServer`: its error interceptor is what
    turns the BatonErrors raised here into statuses with details. To stop it as a
    Worker does: `drain()`, the server's `stop(grace)`, then `wait_closed()`.

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
        self.draining = False
        self._channels: set[_Channel] = set()
        self._calls: set[asyncio.Task[Any]] = set()  # the tasks serving Invoke, OpenChannel

    @property
    def definitions(self) -> list[MethodDefinition]:
        return list(self._methods.values())

    def service(self) -> Service:
        return Service(constants.PROVIDER_SERVICE, self,
                       provider_pb2_grpc.add_MethodProviderServicer_to_server)

    async def Invoke(self, request: provider_pb2.InvokeRequest,  # noqa: N802 - gRPC name
                     context: grpc.aio.ServicerContext) -> provider_pb2.InvokeResponse:
        self._track_call()
        return await self._invoke(request, context.time_remaining())

    async def OpenChannel(self, request_iterator, context: grpc.aio.ServicerContext):  # noqa: N802
        """Runs each invocation the caller sends as its own task and streams back
        completions in batches, as they finish."""
        self._track_call()
        channel = _Channel(self, context)
        self._channels.add(channel)
        try:
            await channel.serve(request_iterator)
        finally:
            self._channels.discard(channel)

    def drain(self) -> None:
        """Refuses new channel invocations with UNAVAILABLE (WORKER_DRAINING), so
        callers retry them elsewhere while the server stops."""
        self.draining = True
        for channel in self._channels:
            channel.check()

    async def wait_closed(self, timeout: float) -> None:
        """Waits up to `timeout` seconds for the calls still being served to end.

        A stopped server has cancelled its calls, but their tasks unwind a moment
        after its stop returns; one still there when the event loop closes is
        cancelled again by the loop, and grpc logs that with a traceback.
        """
        await _wait_ended(self._calls - {asyncio.current_task()}, timeout,
                          "call(s)", "the server stopped")

    def _track_call(self) -> None:
        """Counts the current task (grpc's task for one call) among the calls served."""
        task = asyncio.current_task()
        if task is not None:
            self._calls.add(task)
            task.add_done_callback(self._calls.discard)

    async def _invoke(self, request: provider_pb2.InvokeRequest,
                      remaining: float | None) -> provider_pb2.InvokeResponse:
        definition = self._methods.get(request.method)
        if definition is None:
            raise NotFound(f"method {request.method!r} is not served by this worker",
                           reason="METHOD_NOT_SERVED", metadata={"method": request.method})
        if request.version and request.version != definition.version:
            raise NotFound(f"{definition.name} version {request.version} is not served by "
                           f"this worker (it serves {definition.version})",
                           reason="VERSION_NOT_SERVED", metadata={"method": definition.name})
        if remaining is not None and remaining <= 0:
            raise DeadlineExceeded(f"the deadline of {definition.name} passed before it started")
        params = _validate_params(definition, request.params)
        timeout = remaining if remaining is not None else definition.timeout
        ctx = InvocationContext.from_proto(request.context, method=definition.name,
                                           version=definition.version, timeout=timeout)
        result = await _run(definition, params, ctx, timeout)
        response = provider_pb2.InvokeResponse(
            result=dict_to_struct(_dump_result(definition, result)))
        size = response.ByteSize()
        if size > _MAX_RESULT_BYTES:
            # Sent, it would fail on the wire: on a channel, taking down the stream and
            # every other invocation on it, as UNAVAILABLE, which callers retry.
            raise ResourceExhausted(
                f"{definition.name} returned {size / 2**20:.1f} MiB, more than the "
                f"{_MAX_RESULT_BYTES / 2**20:.1f} MiB a result may take",
                reason="RESULT_TOO_LARGE", metadata={"method": definition.name})
        return response


class _Channel:
    """One OpenChannel call: its running invocations and the completions to send.

    A finished invocation writes its completion itself, with any that finished
    meanwhile, unless a write is already in flight: then that writer takes it
    along. The call ends once the caller stops sending (or the worker drains)
    and nothing is running or left to write.
    """

    def __init__(self, provider: MethodProvider, context: grpc.aio.ServicerContext) -> None:
        self._provider = provider
        self._context = context
        self._running: dict[int, asyncio.Task[None]] = {}  # those cancellable by id
        self._tasks: set[asyncio.Task[None]] = set()  # every invocation not yet ended
        self._outbox: list[provider_pb2.Completion] = []
        self._writing = False
        self._reading = True
        self._finished = asyncio.Event()

    async def serve(self, request_iterator) -> None:
        reader = asyncio.create_task(self._read(request_iterator))
        try:
            await self._finished.wait()
        finally:
            # Once the call is over (or cut) nobody reads what is left to send, so all
            # that still runs is cancelled, and awaited: left to end after the call,
            # it would outlive the worker's stop and be killed by the loop's close.
            tasks = {reader, *self._tasks}
            for task in tasks:
                task.cancel()
            await _wait_ended(tasks, UNWIND_TIMEOUT, "invocation(s)", "their channel closed")

    async def _read(self, request_iterator) -> None:
        try:
            async for batch in request_iterator:
                for invocation in batch.invocations:
                    started = asyncio.create_task(self._complete(invocation))
                    self._running[invocation.id] = started
                    self._tasks.add(started)
                    started.add_done_callback(self._tasks.discard)
                for invocation_id in batch.cancelled_ids:
                    task = self._running.get(invocation_id)
                    if task is not None:
                        task.cancel()
        finally:
            self._reading = False
            self.check()

    def check(self) -> None:
        """Ends the call when nothing more can come of it."""
        if (not self._reading or self._provider.draining) and not self._running \
                and not self._writing and not self._outbox:
            self._finished.set()

    async def _complete(self, invocation: provider_pb2.Invocation) -> None:
        invocation_id = invocation.id
        try:
            if self._provider.draining:
                raise Unavailable("the worker is stopping", reason="WORKER_DRAINING")
            timeout = (invocation.timeout.seconds + invocation.timeout.nanos / 1e9
                       if invocation.HasField("timeout") else None)
            completion = provider_pb2.Completion(
                id=invocation_id,
                response=await self._provider._invoke(invocation.request, timeout))
        except BatonError as exc:
            completion = provider_pb2.Completion(id=invocation_id, error=exc.to_status())
        except asyncio.CancelledError:
            # The caller gave up on it and expects no completion.
            self._running.pop(invocation_id, None)
            self.check()
            return
        except Exception as exc:  # noqa: BLE001 - every failure becomes one clear status
            log.exception("unhandled error in %s", invocation.request.method, exc_info=exc)
            error = Internal(f"internal error: {type(exc).__name__}: {exc}")
            completion = provider_pb2.Completion(id=invocation_id, error=error.to_status())
        # From here on the task is not cancellable by id: a write must not be cut.
        self._running.pop(invocation_id, None)
        self._outbox.append(completion)
        if not self._writing:
            await self._flush()

    async def _flush(self) -> None:
        self._writing = True
        try:
            while self._outbox:
                taken = batch_length(self._outbox)
                batch = provider_pb2.OpenChannelResponse(completions=self._outbox[:taken])
                del self._outbox[:taken]
                await self._context.write(batch)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the call is over; nobody waits for these
            log.debug("channel write failed: %r", exc)
            self._outbox.clear()
        finally:
            self._writing = False
            self.check()


async def _wait_ended(tasks: set[asyncio.Task[Any]], timeout: float, what: str,
                      after: str) -> None:
    """Waits up to `timeout` seconds for `tasks` to end; warns of those that do not."""
    if not tasks:
        return
    _, running = await asyncio.wait(tasks, timeout=timeout)
    if running:
        log.warning("%d %s still running %.3gs after %s (a method that ignores "
                    "cancellation?)", len(running), what, timeout, after)


def _validate_params(definition: MethodDefinition, params) -> BaseModel:
    try:
        return definition.input_model.model_validate(struct_to_dict(params))
    except ValidationError as exc:
        violations = [(field_path("params", err["loc"]), err["msg"])
                      for err in exc.errors(include_url=False)]
        summary = "; ".join(f"{field}: {desc}" for field, desc in violations)
        # The reason the orchestrator gives when the registry's schema check refuses
        # them: callers need not know which of the two checks caught it.
        raise InvalidArgument(f"invalid params for {definition.name}: {summary}",
                              reason="INVALID_PARAMS", violations=violations) from None


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
    except asyncio.CancelledError as exc:
        task = asyncio.current_task()
        if deadline.expired() or (task is not None and task.cancelling()):
            raise  # the caller's cancellation (or the deadline's): not the method's doing
        # The method let a CancelledError of its own out (of a task it awaited).
        raise _method_failed(definition, exc) from exc
    except GeneratorExit:
        raise  # this coroutine is being closed, not failing
    except BaseException as exc:  # noqa: BLE001 - every failure, one clear status
        # SystemExit and KeyboardInterrupt too: a method must not stop the worker (and
        # its other calls). A Ctrl-C to the worker still does.
        if isinstance(exc, KeyboardInterrupt) and _raised_by_sigint(exc):
            raise
        raise _method_failed(definition, exc) from exc


def _raised_by_sigint(exc: KeyboardInterrupt) -> bool:
    """Whether a SIGINT (Ctrl-C) raised `exc`, rather than code the method ran.

    Python raises KeyboardInterrupt for SIGINT from its signal handler, in whatever
    code the main thread runs when the signal arrives, a method's included. A
    handler written in Python (asyncio.run's, at a second Ctrl-C) leaves its own
    frame in the traceback; Python's default handler, written in C, leaves the
    frame it interrupted, stopped at an instruction that raises nothing (a call,
    a jump), where code raising KeyboardInterrupt stops at a `raise`. Under
    Worker.run() a SIGINT raises nothing: the loop's handler stops the worker.
    """
    handler = signal.getsignal(signal.SIGINT)
    while isinstance(handler, functools.partial):
        handler = handler.func
    code = getattr(getattr(handler, "__func__", handler), "__code__", None)
    tb, last = exc.__traceback__, None
    while tb is not None:
        if tb.tb_frame.f_code is code:
            return True
        tb, last = tb.tb_next, tb
    if last is None or handler is not signal.default_int_handler:
        return False
    return not any(i.offset == last.tb_lasti and i.opname in ("RAISE_VARARGS", "RERAISE")
                   for i in dis.get_instructions(last.tb_frame.f_code))


def _method_failed(definition: MethodDefinition, exc: BaseException) -> BatonError:
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
    text = str(exc).strip()
    if isinstance(exc, grpc.RpcError) and callable(getattr(exc, "details", None)):
        # A call the method made failed; str() of it is a dump whose first line
        # ("<AioRpcError of RPC that terminated with:") says nothing.
        text = f"{exc.code().name}: {exc.details() or ''}".strip()
    elif isinstance(exc, SystemExit):  # str() of SystemExit(3) is "3"
        text = f"method {definition.name} exited with {exc!r}"
    elif not isinstance(exc, Exception):  # KeyboardInterrupt and the like: often no message
        text = f"method {definition.name} raised {exc!r}"
    # The type's name alone ("ValueError") reads as a message cut short.
    message = text.splitlines()[0] if text else f"{type(exc).__name__} raised with no message"
    if len(message) > _MAX_MESSAGE:  # it travels in the status, whose size is bounded
        message = message[:_MAX_MESSAGE] + "…"
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
    # Dumped as the declared model, not as whatever subclass of it the method returned:
    # the caller gets the fields the published schema names, by alias, and no others.
    dumped = model.__pydantic_serializer__.to_python(result, mode="json", by_alias=True)
    if problems := not_json_numbers(dumped, "result"):
        # A Struct carries NaN and Infinity, JSON does not: the gateway and every
        # stored copy would fail on them later, far from the method at fault.
        log.error("%s returned a result JSON cannot hold: %s", definition.name, problems)
        shown = "; ".join(f"{f}: {d}" for f, d in problems[:3])  # the status is bounded
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise Internal(f"{definition.name} returned a result JSON cannot hold: {shown}{more}",
                       reason="INVALID_RESULT")
    return dumped
