"""Automatic pipelining: commands issued in the same event-loop turn share a round trip.

With many concurrent RPCs, redis-py's cost per command (a pooled connection,
a write, a wake-up for the reply) is what limits throughput, not Redis.
Sending the commands that pile up during one loop turn as one pipeline pays
it once per batch; a lone command waits one loop turn longer.
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import Redis

_MAX_BATCH = 256


class AutoPipeline:
    """Runs single commands, batching those issued together into one pipeline."""

    def __init__(self, client: Redis) -> None:
        self.client = client
        self._queued: list[tuple[tuple[Any, ...], asyncio.Future]] = []
        self._tasks: set[asyncio.Task] = set()

    async def execute(self, *command: Any) -> Any:
        """Like client.execute_command(*command); raises what the command raised."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queued.append((command, future))
        if len(self._queued) == 1:
            loop.call_soon(self._flush)
        elif len(self._queued) >= _MAX_BATCH:
            self._flush()
        return await future

    def _flush(self) -> None:
        batch, self._queued = self._queued, []
        if batch:
            task = asyncio.create_task(self._send(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send(self, batch: list[tuple[tuple[Any, ...], asyncio.Future]]) -> None:
        try:
            if len(batch) == 1:
                replies = [await self.client.execute_command(*batch[0][0])]
            else:
                async with self.client.pipeline(transaction=False) as pipe:
                    for command, _ in batch:
                        pipe.execute_command(*command)
                    replies = await pipe.execute(raise_on_error=False)
        except BaseException as exc:  # noqa: BLE001 - handed to every caller
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        for (_, future), reply in zip(batch, replies, strict=True):
            if future.done():
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)
