"""Admission: rate limits (token buckets) and concurrency caps, shared through Redis.

One Lua script checks the caller's bucket, the operation's bucket and the
operation's in-flight set, and takes from all of them or from none, in one
round trip. Redis's clock is the only clock, so replicas agree. In-flight
entries carry their deadline, so a replica that dies leaks nothing for long.
"""

from __future__ import annotations

import logging
import time
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from baton_core import ResourceExhausted

from ._keys import RedisKeys
from ._policies import Policy

log = logging.getLogger("baton.orchestrator.admission")

_ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local function level(key, rate, burst)
  local v = redis.call('HMGET', key, 'tokens', 'ts')
  local tokens = tonumber(v[1]) or burst
  local ts = tonumber(v[2]) or now
  return math.min(burst, tokens + math.max(0, now - ts) * rate)
end
local ar, ab = tonumber(ARGV[1]), tonumber(ARGV[2])
local opr, opb = tonumber(ARGV[3]), tonumber(ARGV[4])
local cap, lease = tonumber(ARGV[5]), tonumber(ARGV[7])
local a, o = 0, 0
if ar > 0 then
  a = level(KEYS[1], ar, ab)
  if a < 1 then return {1, tostring((1 - a) / ar)} end
end
if opr > 0 then
  o = level(KEYS[2], opr, opb)
  if o < 1 then return {2, tostring((1 - o) / opr)} end
end
if cap > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
  if redis.call('ZCARD', KEYS[3]) >= cap then return {3, '0.05'} end
  redis.call('ZADD', KEYS[3], now + lease, ARGV[6])
  redis.call('PEXPIRE', KEYS[3], math.ceil(lease * 1000) + 1000)
end
if ar > 0 then
  redis.call('HSET', KEYS[1], 'tokens', a - 1, 'ts', now)
  redis.call('PEXPIRE', KEYS[1], math.ceil(ab / ar * 1000) + 1000)
end
if opr > 0 then
  redis.call('HSET', KEYS[2], 'tokens', o - 1, 'ts', now)
  redis.call('PEXPIRE', KEYS[2], math.ceil(opb / opr * 1000) + 1000)
end
return {0, '0'}
"""

_WHAT = {1: ("RATE_LIMITED", "the caller's rate limit"),
         2: ("RATE_LIMITED", "the operation's rate limit"),
         3: ("CONCURRENCY_LIMITED", "the operation's concurrency limit")}


class Admission:
    """Admits executions under their policy's limits; no Redis call without limits."""

    def __init__(self, client: aioredis.Redis, keys: RedisKeys) -> None:
        self._redis = client
        self._keys = keys
        self._script = client.register_script(_ADMIT)
        self._warned_at = 0.0

    @asynccontextmanager
    async def admit(self, policy: Policy, operation: str, actor: str, execution_id: str,
                    timeout: float):
        """Holds a slot for one execution, or raises ResourceExhausted with RetryInfo."""
        if not policy.admits:
            yield
            return
        inflight = self._keys.inflight(operation)
        held = await self._acquire(policy, operation, actor, execution_id, timeout, inflight)
        try:
            yield
        finally:
            if held:
                try:
                    await self._redis.zrem(inflight, execution_id)
                except RedisError:
                    pass  # the entry expires at the execution's deadline

    async def _acquire(self, policy: Policy, operation: str, actor: str, execution_id: str,
                       timeout: float, inflight: str) -> bool:
        actor_limit, op_limit = policy.actor_rate_limit, policy.operation_rate_limit
        keys = [self._keys.rate_actor(operation, actor), self._keys.rate_operation(operation),
                inflight]
        args = [actor_limit.rate if actor_limit else 0, actor_limit.burst if actor_limit else 0,
                op_limit.rate if op_limit else 0, op_limit.burst if op_limit else 0,
                policy.max_concurrency, execution_id, timeout + 5.0]
        try:
            verdict, wait = await self._script(keys=keys, args=args)
        except RedisError as exc:
            self._warn(exc)
            return False
        verdict = int(verdict)
        if verdict == 0:
            return bool(policy.max_concurrency)
        reason, what = _WHAT[verdict]
        retry_after = float(wait)
        raise ResourceExhausted(
            f"{operation}: over {what} (policy {policy.name}); retry in {retry_after:.3f}s",
            reason=reason, retry_after=retry_after,
            metadata={"operation": operation, "policy": policy.name, "actor": actor})

    def _warn(self, exc: Exception) -> None:
        # Limits fail open: an outage of Redis must not stop every execution.
        now = time.monotonic()
        if now - self._warned_at > 10:
            self._warned_at = now
            log.warning("Redis unavailable for rate limits (%s); admitting without limits", exc)
