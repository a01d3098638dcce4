"""Automatic pipelining on a connection of its own.

With many concurrent RPCs, redis-py's cost per command (a pooled connection,
retry wrappers, a write, a wake-up for the reply) is what limits throughput,
not Redis. Here one round trip is in flight at a time, on one dedicated
connection: a lone command goes out at once, and commands issued while a
round trip is in flight wait for it, then go out together in one write, like
a group commit.
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ConnectionError, ResponseError

_MAX_BATCH = 512

Command = tuple[Any, ...]


class AutoPipeline:
    """Runs commands, batching those that arrive while a round trip is in flight.

    Commands must be safe to send twice: after a broken connection (a Redis
    restart) the round trip is tried once more on a new one.
    """

    def __init__(self, client: Redis, timeout: float) -> None:
        self.timeout = timeout
        self._conn = client.connection_pool.make_connection()
        self._queued: list[tuple[Command, asyncio.Future]] = []
        self._busy = False
        self._drainer: asyncio.Task | None = None

    async def close(self) -> None:
        await self._conn.disconnect()

    async def execute(self, *command: Any) -> Any:
        """Like client.execute_command(*command), without response callbacks."""
        return (await self.execute_all(command))[0]

    async def execute_all(self, *commands: Command) -> list[Any]:
        """Several commands in one round trip; raises the first error among them."""
        if self._busy:
            loop = asyncio.get_running_loop()
            futures = [loop.create_future() for _ in commands]
            self._queued.extend(zip(commands, futures, strict=True))
            replies = await asyncio.gather(*futures, return_exceptions=True)
        else:
            self._busy = True
            try:
                replies = await self._send(commands)
            finally:
                self._after_send()
        for reply in replies:
            if isinstance(reply, BaseException):
                raise reply
        return replies

    async def _send(self, commands: tuple[Command, ...] | list[Command]) -> list[Any]:
        """One round trip; a hung Redis fails it after `timeout` (never blocks the queue)."""
        conn = self._conn
        async with asyncio.timeout(self.timeout):
            for attempt in (1, 2):
                try:
                    await conn.send_packed_command(conn.pack_commands(commands),
                                                   check_health=False)
                    replies: list[Any] = []
                    for _ in commands:
                        try:
                            replies.append(await conn.read_response())
                        except ResponseError as exc:  # one command's error reply
                            replies.append(exc)
                    return replies
                except (ConnectionError, OSError):
                    await conn.disconnect(nowait=True)
                    if attempt == 2:
                        raise
                except BaseException:  # cancelled or timed out mid-reply: out of step
                    await conn.disconnect(nowait=True)
                    raise
        raise AssertionError("unreachable")

    def _after_send(self) -> None:
        if self._queued:
            self._drainer = asyncio.create_task(self._drain())
        else:
            self._busy = False

    async def _drain(self) -> None:
        batch: list[tuple[Command, asyncio.Future]] = []
        try:
            while self._queued:
                batch, self._queued = self._queued[:_MAX_BATCH], self._queued[_MAX_BATCH:]
                try:
                    replies = await self._send([command for command, _ in batch])
                except Exception as exc:  # noqa: BLE001 - the round trip failed for all
                    replies = [exc] * len(batch)
                for (_, future), reply in zip(batch, replies, strict=True):
                    if not future.done():
                        future.set_result(reply)
        finally:
            self._busy = False
            self._drainer = None
            for _, future in [*batch, *self._queued]:  # cancelled: fail, never hang
                if not future.done():
                    future.set_exception(ConnectionError("redis pipeline stopped"))
            self._queued.clear()
