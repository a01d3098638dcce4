"""Worker channels: many invocations over a few long-lived OpenChannel streams.

A unary Invoke per call costs a gRPC call set-up on both sides; a message on
an open stream costs far less, and invocations queued while a write is in
flight leave together in the next one. Each invocation keeps its own deadline
(sent along and enforced here too) and can be cancelled on its own.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable, Sequence

import grpc

from baton.provider.v1 import provider_pb2, provider_pb2_grpc
from baton_core import DeadlineExceeded, Unavailable, batch_length, from_rpc_error, from_status

log = logging.getLogger("baton.orchestrator.channel")

STREAMS_PER_WORKER = 2
MAX_STREAM_AGE = 600.0  # seconds; then new invocations go to a fresh stream (fresh token)
_PASSED_THROUGH = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)


class ChannelUnsupported(Exception):
    """The worker answered OpenChannel with UNIMPLEMENTED: call Invoke instead."""


class _Stream:
    """One OpenChannel call: invocations waiting to be written, and those awaiting
    their completion."""

    def __init__(self, stub: provider_pb2_grpc.MethodProviderStub, address: str,
                 metadata: Sequence[tuple[str, str]], on_end: Callable[[_Stream], None]) -> None:
        self.address = address
        self.opened = time.monotonic()
        self.ended = False
        self._call = stub.OpenChannel(metadata=tuple(metadata))
        self._on_end = on_end
        self._pending: dict[int, asyncio.Future[provider_pb2.InvokeResponse]] = {}
        self._outbox: list[provider_pb2.Invocation] = []
        self._cancelled: list[int] = []
        self._ready = asyncio.Event()
        self._retiring = False
        self._tasks = (asyncio.create_task(self._write()), asyncio.create_task(self._read()))

    def send(self, invocation: provider_pb2.Invocation,
             future: asyncio.Future[provider_pb2.InvokeResponse]) -> None:
        self._pending[invocation.id] = future
        self._outbox.append(invocation)
        self._ready.set()

    def forget(self, invocation_id: int) -> None:
        """The caller gave up on the invocation: the worker is told to cancel it."""
        if self._pending.pop(invocation_id, None) is not None and not self.ended:
            self._cancelled.append(invocation_id)
            self._ready.set()

    def retire(self) -> None:
        """Takes no new invocations; ends once those in flight have completed."""
        self._retiring = True
        self._ready.set()

    async def _write(self) -> None:
        try:
            while True:
                await self._ready.wait()
                self._ready.clear()
                while self._outbox or self._cancelled:
                    await self._call.write(self._next_batch())
                if self._retiring:
                    await self._call.done_writing()
                    return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a broken stream fails its invocations
            self._end(exc)

    def _next_batch(self) -> provider_pb2.OpenChannelRequest:
        taken = batch_length(self._outbox)
        batch = provider_pb2.OpenChannelRequest(invocations=self._outbox[:taken],
                                                cancelled_ids=self._cancelled)
        self._cancelled = []
        del self._outbox[:taken]
        return batch

    async def _read(self) -> None:
        try:
            while True:
                reply = await self._call.read()
                if reply is grpc.aio.EOF:
                    break
                for completion in reply.completions:
                    future = self._pending.pop(completion.id, None)
                    if future is None or future.done():
                        continue
                    if completion.WhichOneof("outcome") == "error":
                        future.set_exception(from_status(completion.error))
                    else:
                        future.set_result(completion.response)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a broken stream fails its invocations
            self._end(exc)
            return
        self._end(None)

    def _end(self, exc: BaseException | None) -> None:
        """Fails every invocation still waiting, and leaves the worker's channel."""
        if self.ended:
            return
        self.ended = True
        self._on_end(self)
        error = self._error(exc)
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(error)
        for task in self._tasks:
            if task is not asyncio.current_task():
                task.cancel()
        self._call.cancel()

    def _error(self, exc: BaseException | None) -> BaseException:
        code = exc.code() if isinstance(exc, grpc.aio.AioRpcError) else None
        if code == grpc.StatusCode.UNIMPLEMENTED:
            return ChannelUnsupported(self.address)
        if code in _PASSED_THROUGH:
            return from_rpc_error(exc)
        if isinstance(exc, grpc.aio.AioRpcError) and code == grpc.StatusCode.UNAVAILABLE \
                and unreachable(exc):
            return Unavailable(f"cannot reach the worker at {self.address} ({exc.details()})",
                               reason=WORKER_UNREACHABLE,
                               metadata={"worker_address": self.address})
        why = code.name if code is not None else (repr(exc) if exc else "it ended")
        return Unavailable(f"the channel to the worker at {self.address} broke ({why})",
                           reason="WORKER_CHANNEL_CLOSED",
                           metadata={"worker_address": self.address})

    async def close(self) -> None:
        self._end(None)
        await asyncio.gather(*self._tasks, return_exceptions=True)


# A worker the call could not reach at all: nothing of it was delivered.
WORKER_UNREACHABLE = "WORKER_UNREACHABLE"


def unreachable(exc: grpc.aio.AioRpcError) -> bool:
    """Whether a failed call never reached its worker (no connection could be made)."""
    return "failed to connect" in (exc.details() or "")


class WorkerChannel:
    """Invokes methods on one worker over up to `streams` OpenChannel streams."""

    def __init__(self, address: str, stub: provider_pb2_grpc.MethodProviderStub,
                 metadata: Callable[[], Sequence[tuple[str, str]]],
                 streams: int = STREAMS_PER_WORKER, max_age: float = MAX_STREAM_AGE) -> None:
        self.address = address
        self.unsupported = False
        self._stub = stub
        self._metadata = metadata
        self._size = max(1, streams)
        self._max_age = max_age
        self._streams: list[_Stream] = []
        self._turn = itertools.count()
        self._ids = itertools.count(1)

    def _stream(self) -> _Stream:
        if len(self._streams) < self._size:
            stream = _Stream(self._stub, self.address, self._metadata(), self._drop)
            self._streams.append(stream)
            return stream
        stream = self._streams[next(self._turn) % len(self._streams)]
        if time.monotonic() - stream.opened > self._max_age:
            self._drop(stream)
            stream.retire()
            return self._stream()
        return stream

    def _drop(self, stream: _Stream) -> None:
        if stream in self._streams:
            self._streams.remove(stream)

    async def invoke(self, request: provider_pb2.InvokeRequest,
                     timeout: float) -> provider_pb2.InvokeResponse:
        """The worker's answer; raises the BatonError Invoke would have failed with,
        DeadlineExceeded after `timeout`, or ChannelUnsupported."""
        return await self.send(provider_pb2.Invocation(request=request), timeout)

    async def send(self, invocation: provider_pb2.Invocation,
                   timeout: float) -> provider_pb2.InvokeResponse:
        """`invoke` for an Invocation whose request is filled in (it gets its id and
        timeout here), which saves copying the request into one."""
        if self.unsupported:
            raise ChannelUnsupported(self.address)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[provider_pb2.InvokeResponse] = loop.create_future()
        invocation.id = next(self._ids)
        nanos = int(timeout * 1e9)
        invocation.timeout.seconds, invocation.timeout.nanos = divmod(nanos, 1_000_000_000)
        stream = self._stream()
        stream.send(invocation, future)
        timer = loop.call_later(timeout, _expire, future, stream, invocation.id)
        try:
            return await future
        except ChannelUnsupported:
            self.unsupported = True
            raise
        except asyncio.CancelledError:
            stream.forget(invocation.id)
            raise
        finally:
            timer.cancel()

    async def close(self) -> None:
        streams, self._streams = self._streams, []
        await asyncio.gather(*(s.close() for s in streams))


def _expire(future: asyncio.Future, stream: _Stream, invocation_id: int) -> None:
    if not future.done():
        future.set_exception(DeadlineExceeded("the invocation's deadline passed"))
        stream.forget(invocation_id)

