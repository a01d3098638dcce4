"""Circuit breakers per worker endpoint, their state in Redis for every replica.

CLOSED counts consecutive failures; at the threshold it turns OPEN, and calls
fail fast with UNAVAILABLE (reason CIRCUIT_OPEN, RetryInfo) until the open
timeout has passed. Then HALF_OPEN lets `half_open_max_calls` trial calls
through at once: that many successes close it, one failure opens it again.
Transitions happen in Lua scripts, so replicas never disagree. An endpoint has
a breaker only when a config applies to it (its override, else the policy's).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import grpc
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from baton_core import Unavailable

from ._keys import RedisKeys
from ._policies import BreakerConfig, Policy

log = logging.getLogger("baton.orchestrator.breakers")

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
FAILURES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                      grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.INTERNAL,
                      grpc.StatusCode.UNKNOWN})

_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local open_timeout, half_max, lease = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local v = redis.call('HMGET', KEYS[1], 's', 'o', 'h', 'ht')
local s = v[1] or 'closed'
if s == 'closed' then return {1, s, '0', 0} end
if s == 'open' then
  local left = (tonumber(v[2]) or 0) + open_timeout - now
  if left > 0 then return {0, s, tostring(left), 0} end
  redis.call('HSET', KEYS[1], 's', 'half_open', 'h', 0, 'w', 0)
  v[3] = 0
end
local h = tonumber(v[3]) or 0
if h >= half_max and now - (tonumber(v[4]) or 0) > lease then h = 0 end
if h >= half_max then return {0, 'half_open', '0.1', 0} end
redis.call('HSET', KEYS[1], 'h', h + 1, 'ht', now)
return {1, 'half_open', '0', 1}
"""

_RECORD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local ok, trial = ARGV[1] == '1', ARGV[2] == '1'
local threshold, half_max = tonumber(ARGV[3]), tonumber(ARGV[4])
local v = redis.call('HMGET', KEYS[1], 's', 'f', 'h', 'w')
local s = v[1] or 'closed'
if trial then
  if s ~= 'half_open' then return s end
  local h = math.max(0, (tonumber(v[3]) or 0) - 1)
  if ok then
    local w = (tonumber(v[4]) or 0) + 1
    if w >= half_max then
      redis.call('HSET', KEYS[1], 's', 'closed', 'f', 0, 'h', 0, 'w', 0)
      return 'closed'
    end
    redis.call('HSET', KEYS[1], 'h', h, 'w', w)
    return s
  end
  redis.call('HSET', KEYS[1], 's', 'open', 'o', now, 'h', 0, 'w', 0)
  return 'open'
end
if s ~= 'closed' then return s end
if ok then
  if (tonumber(v[2]) or 0) > 0 then redis.call('HSET', KEYS[1], 'f', 0) end
  return s
end
local f = redis.call('HINCRBY', KEYS[1], 'f', 1)
redis.call('SADD', KEYS[2], ARGV[5])
if f >= threshold then
  redis.call('HSET', KEYS[1], 's', 'open', 'o', now)
  return 'open'
end
return s
"""


@dataclass(frozen=True)
class Ticket:
    """Permission for one call through a breaker."""

    endpoint: str
    config: BreakerConfig
    trial: bool


@dataclass
class BreakerState:
    endpoint: str
    state: str = CLOSED
    failures: int = 0
    open_time: float | None = None
    half_open_calls: int = 0
    half_open_successes: int = 0


class Breakers:
    """Breaker checks around worker calls, and the state the API shows."""

    def __init__(self, client: aioredis.Redis, keys: RedisKeys) -> None:
        self._redis = client
        self._keys = keys
        self._acquire = client.register_script(_ACQUIRE)
        self._record = client.register_script(_RECORD)
        self.overrides: dict[str, BreakerConfig] = {}
        self.last_config: dict[str, BreakerConfig] = {}
        self._warned_at = 0.0

    def config_for(self, endpoint: str, policy: Policy | None) -> BreakerConfig | None:
        return self.overrides.get(endpoint) or (policy.breaker if policy else None)

    async def acquire(self, endpoint: str, config: BreakerConfig, lease: float,
                      method: str = "") -> Ticket:
        """A ticket for one call, or raises Unavailable (CIRCUIT_OPEN) to fail fast."""
        self.last_config[endpoint] = config
        try:
            allowed, state, wait, trial = await self._acquire(
                keys=[self._keys.breaker(endpoint)],
                args=[config.open_timeout, config.half_open_max_calls, lease])
        except RedisError as exc:
            self._warn(exc)
            return Ticket(endpoint, config, False)
        if int(allowed):
            return Ticket(endpoint, config, bool(int(trial)))
        state = state.decode() if isinstance(state, bytes) else state
        retry_after = float(wait)
        raise Unavailable(
            f"circuit breaker for worker {endpoint} is {state.upper()}; failing fast "
            f"(retry in {retry_after:.3f}s)", reason="CIRCUIT_OPEN", retry_after=retry_after,
            metadata={"endpoint": endpoint, "state": state.upper(), "method": method})

    async def record(self, ticket: Ticket, code: grpc.StatusCode | None) -> None:
        """Counts the outcome of a call made with `ticket` (None: success)."""
        ok = code is None or code not in FAILURES
        try:
            state = await self._record(
                keys=[self._keys.breaker(ticket.endpoint), self._keys.breaker_index()],
                args=["1" if ok else "0", "1" if ticket.trial else "0",
                      ticket.config.failure_threshold, ticket.config.half_open_max_calls,
                      ticket.endpoint])
        except RedisError as exc:
            self._warn(exc)
            return
        state = state.decode() if isinstance(state, bytes) else state
        if state == OPEN and not ok:
            log.warning("circuit breaker for %s is OPEN", ticket.endpoint)

    async def state(self, endpoint: str) -> BreakerState:
        values = await self._redis.hgetall(self._keys.breaker(endpoint))
        data = {(a.decode() if isinstance(a, bytes) else a):
                (b.decode() if isinstance(b, bytes) else b) for a, b in values.items()}
        return BreakerState(endpoint=endpoint, state=data.get("s", CLOSED),
                            failures=int(float(data.get("f", 0))),
                            open_time=float(data["o"]) if "o" in data else None,
                            half_open_calls=int(float(data.get("h", 0))),
                            half_open_successes=int(float(data.get("w", 0))))

    async def endpoints(self) -> list[str]:
        members = await self._redis.smembers(self._keys.breaker_index())
        known = {m.decode() if isinstance(m, bytes) else m for m in members}
        return sorted(known | set(self.overrides))

    async def reset(self, endpoint: str) -> None:
        await self._redis.delete(self._keys.breaker(endpoint))

    def _warn(self, exc: Exception) -> None:
        # Breakers fail open: without Redis, calls go through unguarded.
        now = time.monotonic()
        if now - self._warned_at > 10:
            self._warned_at = now
            log.warning("Redis unavailable for circuit breakers (%s); calling unguarded", exc)
