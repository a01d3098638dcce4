"""The registry process: database, stores, sweeper and the gRPC service."""

from __future__ import annotations

from collections.abc import Sequence

from baton.registry.v1 import registry_pb2_grpc as pb_grpc
from baton_core import Service, Settings, constants

from ._db import Database
from ._leases import LeaseStore
from ._service import RegistryServicer
from ._store import MethodStore
from ._sweeper import Sweeper
from ._tools import ToolStore
from ._watch import ChangeFeed, Watcher


class RegistryApp:
    """Hosts MethodRegistry; nothing touches the event loop before `start`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._feed = ChangeFeed()
        self._db = Database(settings.database_url, on_commit=self._feed.notify)
        leases = LeaseStore(self._db)
        self._sweeper = Sweeper(leases)
        self._servicer = RegistryServicer(
            methods=MethodStore(self._db), tools=ToolStore(self._db), leases=leases,
            watcher=Watcher(self._db, self._feed), lease_ttl=settings.lease_ttl)

    def services(self) -> Sequence[Service]:
        return [Service(constants.REGISTRY_SERVICE, self._servicer,
                        pb_grpc.add_MethodRegistryServicer_to_server)]

    async def start(self) -> None:
        """Opens (and migrates) the database and starts the lease sweeper."""
        await self._db.open()
        self._sweeper.start()

    async def drain(self) -> None:
        """Ends open watches so the server can stop without waiting out its grace."""
        self._feed.close()

    async def stop(self) -> None:
        """Ends open watches, stops the sweeper and closes the database; safe twice."""
        self._feed.close()
        await self._sweeper.stop()
        await self._db.close()

    async def __aenter__(self) -> RegistryApp:
        await self.start()
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.stop()


def build_app(settings: Settings) -> RegistryApp:
    """The registry app for `settings`; call `start()` inside the event loop."""
    return RegistryApp(settings)
