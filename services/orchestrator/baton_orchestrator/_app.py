"""The orchestrator process: Orchestrator, HookManager and PolicyEngine."""

from __future__ import annotations

import asyncio
import logging

import grpc

from baton.orchestrator.v1 import hooks_pb2_grpc, orchestrator_pb2_grpc, policies_pb2_grpc
from baton_core import Service, Settings
from baton_core import constants as c

from ._dispatch import Dispatcher
from ._hooks import HookRegistry, MetricsHook, SessionLifecycleHook
from ._invoker import Invoker
from ._method_cache import MethodCache
from ._policies import PolicyBook
from ._service import HookManagerServicer, OrchestratorServicer, PolicyEngineServicer
from ._sessions import SessionsGateway

log = logging.getLogger("baton.orchestrator")


class OrchestratorApp:
    """Wires the dispatch path to its peers; start/stop own the channels."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._registry_channel: grpc.aio.Channel | None = None
        self._sessions_channel: grpc.aio.Channel | None = None
        self.cache: MethodCache | None = None
        self.invoker = Invoker()
        self.policies = PolicyBook()
        self.hooks: HookRegistry | None = None
        self.dispatcher: Dispatcher | None = None

    async def start(self) -> None:
        self._registry_channel = grpc.aio.insecure_channel(self.settings.registry_addr)
        self._sessions_channel = grpc.aio.insecure_channel(self.settings.sessions_addr)
        sessions = SessionsGateway(self._sessions_channel)
        self.cache = MethodCache(self._registry_channel)
        self.hooks = HookRegistry([MetricsHook(), SessionLifecycleHook(sessions)])
        self.dispatcher = Dispatcher(self.cache, self.invoker, self.policies, self.hooks,
                                     sessions)
        await self.cache.start()
        try:
            await asyncio.wait_for(self.cache.synced.wait(), timeout=5)
        except TimeoutError:
            log.warning("registry at %s not reachable yet; methods will load when it is",
                        self.settings.registry_addr)

    async def stop(self) -> None:
        if self.cache is not None:
            await self.cache.stop()
        await self.invoker.close()
        for channel in (self._registry_channel, self._sessions_channel):
            if channel is not None:
                await channel.close()
        self._registry_channel = self._sessions_channel = None

    def services(self) -> list[Service]:
        return [
            Service(c.ORCHESTRATOR_SERVICE, OrchestratorServicer(self.dispatcher),
                    orchestrator_pb2_grpc.add_OrchestratorServicer_to_server),
            Service(c.HOOK_MANAGER_SERVICE, HookManagerServicer(self.hooks),
                    hooks_pb2_grpc.add_HookManagerServicer_to_server),
            Service(c.POLICY_ENGINE_SERVICE, PolicyEngineServicer(self.policies),
                    policies_pb2_grpc.add_PolicyEngineServicer_to_server),
        ]


def build_app(settings: Settings) -> OrchestratorApp:
    return OrchestratorApp(settings)
