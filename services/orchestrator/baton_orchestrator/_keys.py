"""Every Redis key and channel of the orchestrator's control plane, in one place.

Keys that one script touches together share a {hash tag}, so they live in
one Redis Cluster slot: an operation's rate limits and in-flight set, and
the breakers with their index.

Every key and channel carries the store id of the orchestrator's SQL
database (`ctl_meta`, made by its migration). Replicas of one deployment
share a database, so they share rate limits, breakers, idempotency records
and change notices; two deployments behind one Redis, or a database made
afresh while Redis kept the old one's keys, never see each other's: an
idempotency record of another database would replay a result this one
never produced.
"""

from __future__ import annotations

from baton_core import key_prefix


class RedisKeys:
    """The keys and channel of one store; `use_store` names it once the database
    has been migrated, before any key is used."""

    def __init__(self) -> None:
        self._base = ""

    def use_store(self, store_id: str) -> None:
        self._base = key_prefix(store_id)

    @property
    def base(self) -> str:
        if not self._base:
            raise RuntimeError("Redis keys used before the store id was read")
        return self._base

    def rate_actor(self, operation: str, actor: str) -> str:
        """Hash: one actor's token bucket for one operation."""
        return f"{self.base}rl:{{{operation}}}:actor:{actor}"

    def rate_operation(self, operation: str) -> str:
        """Hash: the operation's token bucket, across actors."""
        return f"{self.base}rl:{{{operation}}}:op"

    def inflight(self, operation: str) -> str:
        """Sorted set: the operation's executions in flight, scored by deadline."""
        return f"{self.base}rl:{{{operation}}}:inflight"

    def breaker(self, endpoint: str) -> str:
        """Hash: one worker endpoint's circuit breaker."""
        return f"{self.base}{{cb}}:{endpoint}"

    def breaker_index(self) -> str:
        """Set: the endpoints that have a breaker."""
        return f"{self.base}{{cb}}:endpoints"

    def idempotency(self, actor: str, key: str) -> str:
        """String: a Dispatch's claim, then its result, for one (actor, key)."""
        return f"{self.base}idem:{actor}:{key}"

    def control_channel(self) -> str:
        """Pub/sub channel: a replica changed policies, hooks or breaker configs."""
        return f"{self.base}control:changed"
