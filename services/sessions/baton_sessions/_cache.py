"""The Redis hot tier. Every Redis error stops here.

A failed call logs one warning per outage, counts a fallback and answers
"miss", so the caller serves from SQL. While Redis is unreachable the tier is
only retried every `redis_retry_interval`; writes skipped or failed in that
time leave their keys in a pending set that is deleted before anything else
is read once Redis answers again, so a Redis that comes back with old data
(AOF, healed partition) does not serve it. Another replica may still read
such a record until this one is back in touch or the record's refresh
interval passes (see SessionsConfig.refresh_interval).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from prometheus_client import Counter
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError

from baton_core import redact_url

from . import _scripts as lua
from ._config import SessionsConfig
from ._keys import Keys
from ._pipeline import AutoPipeline
from ._records import ACTIVE, HotSession, SessionRecord, now_us

log = logging.getLogger("baton.sessions.cache")

_ERRORS = (RedisError, OSError, asyncio.TimeoutError)
_FAILED: Any = object()
_MAX_PENDING = 100_000


class HotTier:
    """Session records, the (user, casefile) index and recent history in Redis."""

    def __init__(self, url: str, config: SessionsConfig, fallbacks: Counter) -> None:
        self.url = url
        self.config = config
        self.fallbacks = fallbacks
        self._ttl_ms = max(1, int(config.ttl * 1000))
        self._client: Redis | None = None
        self._pipeline: AutoPipeline | None = None
        self._down_since: float | None = None
        self._retry_at = 0.0
        self._pending: set[str] = set()
        self._keys: Keys | None = None

    @property
    def keys(self) -> Keys:
        """The keys of the store this tier caches (set by `use_store`)."""
        if self._keys is None:
            raise RuntimeError("HotTier.use_store() has not run")
        return self._keys

    def use_store(self, store_id: str) -> None:
        """Scopes every key and channel to the SQL database `store_id` names."""
        self._keys = Keys(store_id)

    async def start(self) -> None:
        if self._client is None:
            # One immediate retry re-dials a pooled connection that a Redis
            # restart broke; redis-py's default would back off for seconds.
            # No socket_timeout: redis-py would wrap every read and write in
            # asyncio.wait_for (a task each). The pipeline bounds its own
            # round trips; `_call` bounds what goes through this client.
            self._client = Redis.from_url(
                self.url, decode_responses=False,
                socket_connect_timeout=self.config.redis_timeout, retry=Retry(NoBackoff(), 1))
            self._pipeline = AutoPipeline(self._client, self.config.redis_timeout)
            try:
                await asyncio.wait_for(self._client.ping(), self.config.redis_timeout + 1.0)
            except Exception as exc:  # noqa: BLE001 - the service runs on SQL meanwhile
                log.warning("Redis at %s does not answer (%s); sessions are served from SQL "
                            "until it does", redact_url(self.url), exc or type(exc).__name__)

    async def stop(self) -> None:
        pipeline, self._pipeline = self._pipeline, None
        if pipeline is not None:
            await pipeline.close()
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    @property
    def client(self) -> Redis:
        if self._client is None:
            raise RuntimeError("HotTier.start() has not run")
        return self._client

    @property
    def _batched(self) -> AutoPipeline:
        if self._pipeline is None:
            raise RuntimeError("HotTier.start() has not run")
        return self._pipeline

    @property
    def available(self) -> bool:
        """False while Redis is known to be unreachable."""
        return self._down_since is None

    async def get(self, session_id: str, reader: str = "") -> HotSession | None:
        """The session's hot record, refreshing its TTL and last activity (unless
        `reader`, the user the caller must be, is not its user); None on a miss."""
        keys = (self.keys.session(session_id), self.keys.history(session_id))
        reply = await self._call("get", lambda _: self._batched.execute(
            "EVALSHA", lua.TOUCH.sha, 2, *keys, now_us(), self._ttl_ms, reader))
        if reply is _FAILED or not reply or reply[0] is None:
            return None
        return _decode(reply[0], reply[1])

    async def find(self, user_id: str, casefile_id: str) -> HotSession | None:
        """The active session of (user, casefile) if the index and its record agree."""
        key = self.keys.index(user_id, casefile_id)
        session_id = await self._call("find", lambda _: self._batched.execute(
            "GETEX", key, "PX", self._ttl_ms))
        if not session_id or session_id is _FAILED:
            return None
        hot = await self.get(session_id.decode())
        if hot is None:
            return None
        record = hot.record
        if (record.status, record.user_id, record.casefile_id) != (ACTIVE, user_id, casefile_id):
            return None
        return hot

    async def put(self, record: SessionRecord, *, activity: int | None = None,
                  executions: Sequence[tuple[int, bytes]] = (), index: bool = False,
                  previous_casefile: str | None = None, publish: bool = True) -> None:
        """Writes what SQL just committed (or a refill), unless Redis has newer.

        `index` (re)writes the (user, casefile) entry of an active session;
        a session no longer active, and the previous casefile of a re-linked
        one, leave the index. `publish` wakes the session's watchers in every
        replica.
        """
        sid = record.session_id
        keys = [self.keys.session(sid), self.keys.history(sid)]
        args: list[Any] = [record.version, self._ttl_ms, activity or record.last_activity_time,
                           self.config.history_limit,
                           self.keys.channel(sid) if publish else "", len(executions)]
        for score, member in executions:
            args += [score, member]
        args += _encode(record)
        commands: list[tuple[Any, ...]] = [("EVALSHA", lua.PUT.sha, 2, *keys, *args)]
        current_index = self.keys.index(record.user_id, record.casefile_id)
        if record.status != ACTIVE:
            commands.append(("EVALSHA", lua.UNINDEX.sha, 1, current_index, sid))
        elif index:
            commands.append(("SET", current_index, sid, "PX", self._ttl_ms))
        stale = [self.keys.index(record.user_id, previous_casefile)] \
            if previous_casefile is not None else []
        commands += [("EVALSHA", lua.UNINDEX.sha, 1, key, sid) for key in stale]
        await self._call("put", lambda _: self._batched.execute_all(*commands),
                         invalidate=[*keys, current_index, *stale])

    async def add_history(self, session_id: str,
                          executions: Sequence[tuple[int, bytes]]) -> None:
        """Refills the history of a session from SQL, leaving its record alone."""
        keys = [self.keys.session(session_id), self.keys.history(session_id)]
        args: list[Any] = [0, self._ttl_ms, 0, self.config.history_limit, "", len(executions)]
        for score, member in executions:
            args += [score, member]
        await self._call("history", lambda _: self._batched.execute(
            "EVALSHA", lua.PUT.sha, 2, *keys, *args), invalidate=keys)

    async def history(self, session_id: str, count: int
                      ) -> tuple[int, int, list[tuple[bytes, int]]] | None:
        """(execution count, history size, newest entries as (member, seq)) or None."""
        keys = (self.keys.session(session_id), self.keys.history(session_id))
        reply = await self._call("history", lambda _: self._batched.execute(
            "EVALSHA", lua.HISTORY.sha, 2, *keys, count))
        if not reply or reply is _FAILED:
            return None
        total, size, flat = reply
        entries = [(m, int(s)) for m, s in zip(flat[::2], flat[1::2], strict=True)]
        return int(total), int(size), entries

    async def activity(self, session_ids: Iterable[str]) -> dict[str, int] | None:
        """Redis's last activity of those sessions it holds as active; None if unreachable."""
        ids = list(session_ids)

        async def action(client: Redis) -> list[Any]:
            async with asyncio.timeout(self.config.redis_timeout), \
                    client.pipeline(transaction=False) as pipe:
                for sid in ids:
                    pipe.hmget(self.keys.session(sid), "la", "s")
                return await pipe.execute()

        replies = await self._call("activity", action)
        if replies is _FAILED:
            return None
        return {sid: int(la) for sid, (la, status) in zip(ids, replies, strict=True)
                if la is not None and status == ACTIVE.encode()}

    async def _call(self, operation: str, action: Callable[[Redis], Awaitable[Any]],
                    invalidate: Sequence[str] = ()) -> Any:
        if self._down_since is not None:
            if time.monotonic() < self._retry_at:
                self._fell_back(operation, invalidate)
                return _FAILED
            self._retry_at = time.monotonic() + self.config.redis_retry_interval
        client = self.client
        try:
            if self._pending:
                async with asyncio.timeout(self.config.redis_timeout):
                    await self._delete_pending(client)
            try:
                result = await action(client)
            except NoScriptError:  # Redis restarted and forgot the scripts
                async with asyncio.timeout(self.config.redis_timeout):
                    for script in lua.ALL:
                        await client.script_load(script.source)
                result = await action(client)
        except _ERRORS as exc:
            self._failed(operation, exc, invalidate)
            return _FAILED
        if self._down_since is not None:
            log.info("Redis is back after %.1fs; the hot tier refills as sessions are used",
                     time.monotonic() - self._down_since)
            self._down_since = None
        return result

    async def _delete_pending(self, client: Redis) -> None:
        keys = list(self._pending)
        async with client.pipeline(transaction=False) as pipe:
            for key in keys:  # one key per command: fine with Redis Cluster
                pipe.delete(key)
            await pipe.execute()
        self._pending.difference_update(keys)

    def _failed(self, operation: str, exc: BaseException, invalidate: Sequence[str]) -> None:
        if self._down_since is None:
            self._down_since = time.monotonic()
            log.warning("Redis unavailable (%s: %s); serving sessions from SQL until it is back",
                        type(exc).__name__, exc)
        self._retry_at = time.monotonic() + self.config.redis_retry_interval
        self._fell_back(operation, invalidate)

    def _fell_back(self, operation: str, invalidate: Sequence[str]) -> None:
        self.fallbacks.labels(operation).inc()
        # Past the cap (a very long outage under heavy writes) keys are no longer
        # remembered; such records are then only corrected by refresh_interval.
        if invalidate and len(self._pending) < _MAX_PENDING:
            self._pending.update(invalidate)


def _encode(record: SessionRecord) -> list[Any]:
    """Hash fields: the record as one value (one thing for the client to parse), and
    beside it what the scripts look at. `la`, Redis's view of last activity, is set
    by the script."""
    blob = json.dumps([
        record.session_id, record.user_id, record.casefile_id, record.status, record.labels,
        record.create_time, record.last_activity_time, record.end_time,
        record.execution_count, record.context, record.etag, record.version, now_us(),
    ], separators=(",", ":"))
    return ["r", blob, "v", record.version, "s", record.status, "n", record.execution_count,
            "u", record.user_id]


def _decode(blob: bytes, activity: bytes | None) -> HotSession | None:
    try:
        (sid, user_id, casefile_id, status, labels, create_time, sql_activity, end_time,
         count, context, etag, version, refreshed) = json.loads(blob)
        record = SessionRecord(
            session_id=sid, user_id=user_id, casefile_id=casefile_id, status=status,
            labels=labels, create_time=create_time,
            last_activity_time=max(int(activity or 0), sql_activity), end_time=end_time,
            execution_count=count, context=context, etag=etag, version=version)
    except (TypeError, ValueError):  # not a record we wrote: treat as a miss
        return None
    return HotSession(record, sql_activity, refreshed)
