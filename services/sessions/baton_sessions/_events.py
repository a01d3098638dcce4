"""Following the event outbox: WatchSession replays from SQL, then follows.

SQL is the only source of events. Wake-ups only shorten the wait: a commit
in this process wakes its watchers directly, a commit in another replica
wakes them through Redis pub/sub, and without any wake-up (Redis away) a
watcher looks at SQL every `watch_poll_interval`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from redis.asyncio.client import PubSub

from ._cache import HotTier
from ._config import SessionsConfig
from ._history import HistoryStore
from ._records import EventRecord
from ._store import SessionStore

log = logging.getLogger("baton.sessions.events")

_BATCH = 200
_LISTEN_TIMEOUT = 0.2


class _Topic:
    def __init__(self) -> None:
        self.watchers = 0
        self.wakeup = asyncio.Event()


_CLOSE_TIMEOUT = 1.0


class EventHub:
    """Wakes the watchers of a session when its event log may have grown."""

    def __init__(self, cache: HotTier, config: SessionsConfig) -> None:
        self.cache = cache
        self.config = config
        self._topics: dict[str, _Topic] = {}
        self._changed = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._stopping = False

    async def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._listen(), name="sessions-event-listener")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        # A cancellation that lands while redis-py waits for a message can be
        # swallowed (turned into a timeout it handles), and the loop would go on:
        # ask again until the task has ended, and let the loop see the flag.
        while not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=1.0)
        with contextlib.suppress(asyncio.CancelledError, Exception):
            task.result()

    def notify(self, session_id: str) -> None:
        topic = self._topics.get(session_id)
        if topic is not None:
            topic.wakeup.set()
            topic.wakeup = asyncio.Event()

    @contextlib.contextmanager
    def subscription(self, session_id: str):
        topic = self._topics.get(session_id)
        if topic is None:
            topic = self._topics[session_id] = _Topic()
            self._changed.set()
        topic.watchers += 1
        try:
            yield topic
        finally:
            topic.watchers -= 1
            if topic.watchers == 0:
                del self._topics[session_id]
                self._changed.set()

    async def _listen(self) -> None:
        """Keeps one pub/sub connection subscribed to the watched sessions' channels."""
        pubsub: PubSub | None = None
        subscribed: set[str] = set()
        failing = False
        while not self._stopping:
            try:
                if pubsub is None:
                    pubsub, subscribed = self.cache.client.pubsub(), set()
                self._changed.clear()
                wanted = {self.cache.keys.channel(sid) for sid in self._topics}
                if not wanted and not subscribed:
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self._changed.wait(), 5.0)
                    continue
                # Bounded: the client has no socket timeout (see HotTier.start).
                async with asyncio.timeout(self.config.redis_timeout + _LISTEN_TIMEOUT):
                    if wanted - subscribed:
                        await pubsub.subscribe(*(wanted - subscribed))
                    if subscribed - wanted:
                        await pubsub.unsubscribe(*(subscribed - wanted))
                    subscribed = wanted
                    message = await pubsub.get_message(timeout=_LISTEN_TIMEOUT)
                if failing:
                    log.info("event wake-ups over Redis pub/sub resumed")
                    failing = False
                # A confirmed subscription wakes its watchers too: what committed
                # before it was in place was published to no one, so they re-read.
                if message and message.get("type") in ("message", "subscribe"):
                    self.notify(self.cache.keys.session_id_of_channel(message["channel"].decode()))
            except asyncio.CancelledError:
                if pubsub is not None:
                    await _close(pubsub)
                raise
            except Exception as exc:  # noqa: BLE001 - watchers fall back to polling SQL
                if not failing:
                    log.warning("event wake-ups over Redis pub/sub unavailable (%s: %s); "
                                "watchers poll SQL", type(exc).__name__, exc)
                    failing = True
                if pubsub is not None:
                    await _close(pubsub)
                pubsub = None
                if not self._stopping:
                    await asyncio.sleep(self.config.redis_retry_interval)
        if pubsub is not None:
            await _close(pubsub)


async def _close(pubsub: PubSub) -> None:
    """Closes a pub/sub connection, giving up after a second: a read cut short
    by cancellation can leave redis-py's close waiting forever, and stopping the
    service must not."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(_CLOSE_TIMEOUT):
            await pubsub.aclose()


async def watch(hub: EventHub, sessions: SessionStore, history: HistoryStore,
                session_id: str, after: int) -> AsyncIterator[EventRecord]:
    """Yields the session's events after `after`, then new ones as they commit.

    Raises NotFound before yielding anything for an unknown session.
    """
    await sessions.get(session_id)
    with hub.subscription(session_id) as topic:
        while True:
            wakeup = topic.wakeup  # taken before reading, so no commit slips between
            batch = await history.events(session_id, after, _BATCH)
            for event in batch:
                yield event
                after = event.sequence
            if len(batch) == _BATCH:
                continue
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(wakeup.wait(), hub.config.watch_poll_interval)
