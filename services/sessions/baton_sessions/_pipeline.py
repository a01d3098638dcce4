"""Automatic pipelining on a connection of its own.

With many concurrent RPCs, redis-py's cost per command (a pooled connection,
retry wrappers, a coroutine per reply read, a write per round trip) is what
limits throughput, not Redis. Here every command goes out on one dedicated
connection without waiting for the replies before it: commands issued in the
same turn of the event loop leave in one write, and replies, parsed by
hiredis as they arrive, go to their callers in the order Redis answers them.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import hiredis
from redis.asyncio import Redis
from redis.asyncio.connection import SSLConnection, UnixDomainSocketConnection
from redis.exceptions import ConnectionError, NoScriptError, ResponseError

Command = tuple[Any, ...]


class _Waiting:
    """The replies one caller waits for, in the order its commands went out."""

    __slots__ = ("count", "future", "replies", "since")

    def __init__(self, future: asyncio.Future, count: int, since: float) -> None:
        self.future = future
        self.count = count
        self.replies: list[Any] = []
        self.since = since


class _Connection(asyncio.Protocol):
    """One Redis connection: writes batched per loop turn, replies matched in order.

    A hung Redis (no reply to the oldest command for `timeout`) aborts the
    connection; every caller still waiting then fails, and nothing is left out
    of step.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        self.loop = loop
        self.timeout = timeout
        self.transport: asyncio.Transport | None = None
        self.alive = False
        self._reader = hiredis.Reader(replyError=ResponseError)
        self._waiting: deque[_Waiting] = deque()
        self._outgoing: list[bytes] = []
        self._watchdog: asyncio.TimerHandle | None = None
        self._error: BaseException | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.alive = True

    def send(self, packed: bytes, count: int) -> asyncio.Future:
        """Queues `count` commands packed in `packed`; the future gets their replies."""
        if not self.alive:
            raise ConnectionError("redis connection lost") from self._error
        future = self.loop.create_future()
        now = self.loop.time()
        self._waiting.append(_Waiting(future, count, now))
        if not self._outgoing:
            self.loop.call_soon(self._flush)
        self._outgoing.append(packed)
        if self._watchdog is None:
            self._watchdog = self.loop.call_at(now + self.timeout, self._check)
        return future

    def _flush(self) -> None:
        outgoing, self._outgoing = self._outgoing, []
        if self.alive and outgoing:
            self.transport.write(b"".join(outgoing))  # type: ignore[union-attr]

    def data_received(self, data: bytes) -> None:
        reader, waiting = self._reader, self._waiting
        try:
            reader.feed(data)
            while (reply := reader.gets()) is not False:
                entry = waiting[0]
                entry.replies.append(reply)
                if len(entry.replies) == entry.count:
                    waiting.popleft()
                    if not entry.future.done():  # its caller may have given up
                        entry.future.set_result(entry.replies)
        except (hiredis.ProtocolError, IndexError) as exc:  # garbage or unasked replies
            self.abort(ConnectionError(f"redis connection out of step: {exc!r}"))

    def _check(self) -> None:
        self._watchdog = None
        if not self._waiting or not self.alive:
            return
        oldest = self._waiting[0].since
        if self.loop.time() - oldest >= self.timeout:
            self.abort(TimeoutError(f"no reply from redis in {self.timeout}s"))
        else:
            self._watchdog = self.loop.call_at(oldest + self.timeout, self._check)

    def abort(self, error: BaseException) -> None:
        if self.alive:
            self._fail(error)
            self.transport.abort()  # type: ignore[union-attr]

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(ConnectionError(f"redis connection lost: {exc or 'closed'}"))

    def _fail(self, error: BaseException) -> None:
        self.alive = False
        self._error = self._error or error
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        self._outgoing.clear()
        while self._waiting:
            future = self._waiting.popleft().future
            if not future.done():
                future.set_exception(self._error)


class AutoPipeline:
    """Runs commands pipelined on one connection, opened on first use.

    Commands must be safe to send twice: after a broken connection (a Redis
    restart) a caller's commands are sent once more on a new one.
    """

    def __init__(self, client: Redis, timeout: float) -> None:
        self.timeout = timeout
        self._pool = client.connection_pool
        self._conn: _Connection | None = None
        self._connecting: asyncio.Future | None = None
        self._closed = False

    async def close(self) -> None:
        """Fails the calls in flight; later calls (and their retries) raise
        ConnectionError instead of opening a new connection."""
        self._closed = True
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.abort(ConnectionError("redis pipeline closed"))

    async def execute(self, *command: Any) -> Any:
        """Like client.execute_command(*command), without response callbacks."""
        return (await self.execute_all(command))[0]

    async def execute_all(self, *commands: Command) -> list[Any]:
        """Several commands, in order; raises the first error among them."""
        if not commands:
            return []
        packed = b"".join(hiredis.pack_command(command) for command in commands)
        for attempt in (1, 2):
            conn = self._conn
            if self._closed:
                raise ConnectionError("redis pipeline closed")
            try:
                if conn is None or not conn.alive:
                    conn = await self._connected()
                replies = await conn.send(packed, len(commands))
                break
            except TimeoutError:  # a hung Redis: sending again would only wait again
                raise
            except (ConnectionError, OSError):
                if attempt == 2:
                    raise
        for reply in replies:
            if isinstance(reply, ResponseError):
                raise _error(reply)
        return replies

    async def _connected(self) -> _Connection:
        """The live connection; callers arriving while it is being opened share it."""
        connecting = self._connecting
        if connecting is None or connecting.done():
            connecting = self._connecting = asyncio.ensure_future(self._connect())
            # Retrieved here too, so a failure nobody waited for is not logged.
            connecting.add_done_callback(lambda f: f.cancelled() or f.exception())
        return await asyncio.shield(connecting)

    async def _connect(self) -> _Connection:
        conn = await self._open()
        if self._closed:
            conn.abort(ConnectionError("redis pipeline closed"))
            raise ConnectionError("redis pipeline closed")
        self._conn = conn
        return conn

    async def _open(self) -> _Connection:
        loop = asyncio.get_running_loop()
        options = self._pool.connection_kwargs
        cls = self._pool.connection_class
        conn: _Connection | None = None
        try:
            async with asyncio.timeout(self.timeout):
                if issubclass(cls, UnixDomainSocketConnection):
                    _, conn = await loop.create_unix_connection(
                        lambda: _Connection(loop, self.timeout), options["path"])
                else:
                    ssl = cls(**options).ssl_context.get() \
                        if issubclass(cls, SSLConnection) else None
                    _, conn = await loop.create_connection(
                        lambda: _Connection(loop, self.timeout),
                        options.get("host", "localhost"), options.get("port", 6379), ssl=ssl)
                setup = _setup_commands(options)
                if setup:
                    replies = await conn.send(
                        b"".join(hiredis.pack_command(c) for c in setup), len(setup))
                    errors = [r for r in replies if isinstance(r, ResponseError)]
                    if errors:
                        raise ConnectionError(f"redis refused the connection: {errors[0]}")
        except BaseException:
            if conn is not None:  # set up halfway (refused, or timed out): never used
                conn.abort(ConnectionError("redis connection set-up failed"))
            raise
        return conn


def _setup_commands(options: dict[str, Any]) -> list[Command]:
    """AUTH and SELECT as the URL asks; the connection speaks RESP2."""
    commands: list[Command] = []
    password, username = options.get("password"), options.get("username")
    if password:
        commands.append(("AUTH", username, password) if username else ("AUTH", password))
    if options.get("db"):
        commands.append(("SELECT", options["db"]))
    return commands


def _error(reply: ResponseError) -> ResponseError:
    """The redis-py exception for an error reply (the cache reloads scripts on NOSCRIPT)."""
    if str(reply).startswith("NOSCRIPT"):
        return NoScriptError(str(reply))
    return reply
