"""The orchestrator process: Orchestrator, HookManager, PolicyEngine and Workflows."""

from __future__ import annotations

import asyncio
import logging

import grpc

from baton.orchestrator.v1 import (
    hooks_pb2_grpc,
    orchestrator_pb2_grpc,
    policies_pb2_grpc,
    workflows_pb2,
    workflows_pb2_grpc,
)
from baton_core import Service, Settings
from baton_core import constants as c

from ._dispatch import Dispatcher
from ._hooks import HookRegistry, MetricsHook, SessionLifecycleHook
from ._invoker import Invoker
from ._method_cache import MethodCache
from ._policies import PolicyBook
from ._service import HookManagerServicer, OrchestratorServicer, PolicyEngineServicer
from ._sessions import SessionsGateway
from .workflows import EngineConfig, WorkflowEngine, WorkflowsServicer

log = logging.getLogger("baton.orchestrator")
_WORKFLOWS_SERVICE = workflows_pb2.DESCRIPTOR.services_by_name["Workflows"].full_name


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
        self.sessions: SessionsGateway | None = None
        self.workflows: WorkflowEngine | None = None

    async def start(self) -> None:
        self._registry_channel = grpc.aio.insecure_channel(self.settings.registry_addr)
        self._sessions_channel = grpc.aio.insecure_channel(self.settings.sessions_addr)
        sessions = self.sessions = SessionsGateway(self._sessions_channel)
        self.cache = MethodCache(self._registry_channel)
        self.hooks = HookRegistry([MetricsHook(), SessionLifecycleHook(sessions)])
        self.dispatcher = Dispatcher(self.cache, self.invoker, self.policies, self.hooks,
                                     sessions)
        self.workflows = WorkflowEngine(
            self.settings.database_url, self.dispatcher, self.cache, self.policies, sessions,
            EngineConfig.from_env(self.settings.extra))
        await self.cache.start()
        try:
            await asyncio.wait_for(self.cache.synced.wait(), timeout=5)
        except TimeoutError:
            log.warning("registry at %s not reachable yet; methods will load when it is",
                        self.settings.registry_addr)
        await self.workflows.start()

    async def stop(self) -> None:
        workflows, self.workflows = self.workflows, None
        if workflows is not None:
            await workflows.stop()
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
            Service(_WORKFLOWS_SERVICE, WorkflowsServicer(self.workflows),
                    workflows_pb2_grpc.add_WorkflowsServicer_to_server),
        ]


def build_app(settings: Settings) -> OrchestratorApp:
    return OrchestratorApp(settings)
