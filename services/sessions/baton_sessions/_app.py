"""Wiring of the sessions service: stores, hot tier, event hub, sweeper, servicer."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from baton.sessions.v1 import sessions_pb2_grpc
from baton_core import Service, Settings, constants

from ._cache import HotTier
from ._config import SessionsConfig
from ._events import EventHub
from ._expiry import Expirer
from ._history import HistoryStore
from ._metrics import redis_fallbacks
from ._service import SessionsServicer
from ._sessions import Sessions
from ._sql import Database
from ._store import SessionStore


class SessionsApp:
    """The SessionOrchestrator service with its stores; `start` before serving.

    Nothing here touches the network or the event loop until `start()`, so
    the app can be built outside the loop that runs it.
    """

    def __init__(self, settings: Settings, config: SessionsConfig | None = None,
                 registry: CollectorRegistry | None = None) -> None:
        self.settings = settings
        self.config = config or SessionsConfig.from_settings(settings)
        self.db = Database(settings.database_url)
        self.cache = HotTier(settings.redis_url, self.config, redis_fallbacks(registry))
        self.hub = EventHub(self.cache, self.config)
        self.expirer = Expirer(self.db, self.cache, self.hub, self.config)
        self.sessions = Sessions(SessionStore(self.db), HistoryStore(self.db), self.cache,
                                 self.hub, self.expirer, self.config)
        self.servicer = SessionsServicer(self.sessions, self.hub,
                                         owners_only=settings.auth.enabled)
        self._started = False

    def services(self) -> list[Service]:
        return [Service(constants.SESSIONS_SERVICE, self.servicer,
                        sessions_pb2_grpc.add_SessionOrchestratorServicer_to_server)]

    async def start(self) -> None:
        if self._started:
            return
        await self.db.start()
        self.cache.use_store(self.db.store_id)
        await self.cache.start()
        await self.hub.start()
        await self.expirer.start()
        self._started = True

    async def stop(self) -> None:
        """Stops the sweeper and listeners, then closes Redis and SQL; safe twice."""
        self._started = False
        await self.expirer.stop()
        await self.hub.stop()
        await self.sessions.stop()
        await self.cache.stop()
        await self.db.stop()

    async def __aenter__(self) -> SessionsApp:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


def build_app(settings: Settings, *, config: SessionsConfig | None = None,
              registry: CollectorRegistry | None = None) -> SessionsApp:
    """Builds the sessions service from settings.

    Args:
        settings: The process settings (listen, database_url, redis_url,
            session_ttl).
        config: Tunables; by default derived from `settings` and env.
        registry: Prometheus registry for the service's metrics; the
            process-wide default registry when None.
    """
    return SessionsApp(settings, config, registry)
