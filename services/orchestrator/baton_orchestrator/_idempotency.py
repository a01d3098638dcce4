"""Replay of Dispatch results for a repeated idempotency key, shared through Redis.

The first call with a key claims it (SET NX, pending until its deadline);
its result is kept for the policy's window. A repeat with the same key and
actor gets that result back without executing; a repeat while the first is
still running gets ABORTED; a repeat with other params gets
FAILED_PRECONDITION. A failed execution releases the key, so a retry runs.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from baton_core import Aborted, FailedPrecondition, Unavailable

from ._keys import RedisKeys

_CLAIM = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return false end
return redis.call('GET', KEYS[1])
"""


def fingerprint(operation: str, params: dict[str, Any]) -> str:
    body = json.dumps([operation, params], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(body.encode()).hexdigest()[:32]


class Idempotency:
    def __init__(self, client: aioredis.Redis, keys: RedisKeys) -> None:
        self._redis = client
        self._claim = client.register_script(_CLAIM)
        self._key = keys.idempotency

    async def claim(self, actor: str, key: str, print_: str,
                    pending_seconds: float) -> dict[str, Any] | None:
        """Claims `key` for a new execution (None), or returns the stored result.

        Raises:
            Aborted: An execution with this key is still running.
            FailedPrecondition: The key was used with another operation or params.
            Unavailable: Redis is unreachable (executing could run the call twice).
        """
        pending = json.dumps({"fp": print_, "state": "pending"})
        try:
            found = await self._claim(keys=[self._key(actor, key)],
                                      args=[pending, max(1, int(pending_seconds * 1000))])
        except RedisError as exc:
            raise Unavailable(f"idempotency store unavailable: {exc}",
                              reason="IDEMPOTENCY_UNAVAILABLE") from None
        if found is None:
            return None
        stored = json.loads(found)
        if stored.get("fp") != print_:
            raise FailedPrecondition(
                "idempotency_key was already used with another operation or other params",
                reason="IDEMPOTENCY_KEY_REUSED", metadata={"idempotency_key": key})
        if stored.get("state") == "pending":
            raise Aborted("an execution with this idempotency_key is still running",
                          reason="IDEMPOTENCY_KEY_IN_PROGRESS",
                          metadata={"idempotency_key": key})
        return stored["result"]

    async def complete(self, actor: str, key: str, print_: str, result: dict[str, Any],
                       window: float) -> None:
        body = json.dumps({"fp": print_, "state": "done", "result": result}, default=str)
        try:
            await self._redis.set(self._key(actor, key), body, px=max(1, int(window * 1000)))
        except RedisError:
            pass  # the pending claim expires; a repeat then executes again

    async def release(self, actor: str, key: str) -> None:
        try:
            await self._redis.delete(self._key(actor, key))
        except RedisError:
            pass
