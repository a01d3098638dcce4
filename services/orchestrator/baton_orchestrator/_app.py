"""The orchestrator process: Orchestrator, HookManager, PolicyEngine, CircuitBreakers,
AuditLog and Workflows."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os

import grpc
import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncEngine

from baton.orchestrator.v1 import (
    audit_pb2_grpc,
    circuit_breakers_pb2_grpc,
    hooks_pb2_grpc,
    orchestrator_pb2_grpc,
    policies_pb2_grpc,
    workflows_pb2_grpc,
)
from baton_core import (
    Service,
    ServiceCredentials,
    Settings,
    float_setting,
    insecure_channel,
    make_engine,
    new_id,
)
from baton_core import constants as c

from . import _constants as k
from ._admission import Admission
from ._audit_log import AuditLog
from ._audit_service import AuditLogServicer
from ._breaker_service import CircuitBreakersServicer
from ._breakers import Breakers
from ._builtin_hooks import AuditHook, MetricsHook, SessionLifecycleHook
from ._control import ControlPlane
from ._dispatch import Dispatcher, Guards
from ._hook_service import HookManagerServicer
from ._hooks import HookRegistry
from ._idempotency import Idempotency
from ._invoker import Invoker
from ._keys import RedisKeys
from ._method_cache import MethodCache
from ._policies import PolicyBook
from ._policy_service import PolicyEngineServicer
from ._service import OrchestratorServicer
from ._sessions import SessionsGateway
from .workflows import EngineConfig, WorkflowEngine, WorkflowsServicer

log = logging.getLogger("baton.orchestrator")


class OrchestratorApp:
    """Wires the dispatch path to its peers; start/stop own the channels."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._registry_channel: grpc.aio.Channel | None = None
        self._sessions_channel: grpc.aio.Channel | None = None
        self.cache: MethodCache | None = None
        self.credentials = ServiceCredentials(settings.auth, "orchestrator")
        self.redis = aioredis.from_url(settings.redis_url)  # connects on first use
        # Scoped to the SQL database once the control plane has migrated it.
        self.keys = RedisKeys()
        self.breakers = Breakers(self.redis, self.keys)
        self.invoker = Invoker(self.breakers, self.credentials)
        self.policies = PolicyBook()
        self.hooks = HookRegistry([])
        self.audit_sink = AuditLog()  # `baton serve` audits mutating RPCs into it
        self.control: ControlPlane | None = None
        self._control_db: AsyncEngine | None = None
        self.dispatcher: Dispatcher | None = None
        self.sessions: SessionsGateway | None = None
        self.workflows: WorkflowEngine | None = None
        # Every setting read now, so that a bad one stops the service before it
        # touches its database (SettingError, one line).
        env = {**os.environ, **settings.extra}
        config = EngineConfig.from_env(settings.extra)
        # One name for this replica: its run leases and its stored sessions backlog.
        self._engine_config = dataclasses.replace(
            config, replica_id=config.replica_id or new_id("rep_"))
        self._refresh = float_setting(env, k.ENV_CONTROL_REFRESH, k.DEFAULT_CONTROL_REFRESH)
        self._idempotency_window = float_setting(env, k.ENV_IDEMPOTENCY_WINDOW,
                                                 k.DEFAULT_IDEMPOTENCY_WINDOW)

    @property
    def stop_seconds(self) -> float:
        """What a stop spends beyond the server's grace: the workflow runs' drain."""
        return self._engine_config.drain_seconds

    async def start(self) -> None:
        self._registry_channel = insecure_channel(self.settings.registry_addr)
        self._sessions_channel = insecure_channel(self.settings.sessions_addr)
        sessions = self.sessions = SessionsGateway(self._sessions_channel, self.credentials)
        self.cache = MethodCache(self._registry_channel, self.credentials.own)
        env = {**os.environ, **self.settings.extra}
        self.control = ControlPlane(
            self.policies, self.hooks,
            [MetricsHook(), AuditHook(self.audit_sink), SessionLifecycleHook(sessions)],
            redis=self.redis, keys=self.keys, breakers=self.breakers, credentials=self.credentials,
            audit=self.audit_sink, policies_file=env.get(k.ENV_POLICIES_FILE, ""),
            refresh=self._refresh)
        guards = Guards(Admission(self.redis, self.keys), Idempotency(self.redis, self.keys),
                        self._idempotency_window)
        self.dispatcher = Dispatcher(self.cache, self.invoker, self.policies, self.hooks,
                                     sessions, guards)
        db = self._control_db = make_engine(self.settings.database_url)
        self.audit_sink.attach(db)
        await self.control.start(db)
        # What this replica (by its name) or a stopped one left to record in sessions.
        await sessions.attach(db, self._engine_config.replica_id)
        self.workflows = WorkflowEngine(
            self.settings.database_url, self.dispatcher, self.cache, self.policies, sessions,
            self._engine_config)
        await self.cache.start()
        try:
            await asyncio.wait_for(self.cache.synced.wait(), timeout=5)
        except TimeoutError:
            log.warning("registry at %s not reachable yet; methods will load when it is",
                        self.settings.registry_addr)
        await self.workflows.start()
        # SQLite: the audit log writes through the workflow writer's connection.
        self.audit_sink.route_sqlite_writes(self.workflows.writer.sqlite_lane)

    async def stop(self) -> None:
        workflows, self.workflows = self.workflows, None
        self.audit_sink.route_sqlite_writes(None)
        if workflows is not None:
            await workflows.stop()
        control, self.control = self.control, None
        if control is not None:
            await control.stop()
        await self.audit_sink.stop()
        if self.cache is not None:
            await self.cache.stop()
        await self.invoker.close()
        if self.sessions is not None:
            await self.sessions.close()
        for channel in (self._registry_channel, self._sessions_channel):
            if channel is not None:
                await channel.close()
        self._registry_channel = self._sessions_channel = None
        await self.redis.aclose()
        db, self._control_db = self._control_db, None
        if db is not None:
            await db.dispose()

    def services(self) -> list[Service]:
        dispatcher, control, cache, workflows = (self.dispatcher, self.control, self.cache,
                                                 self.workflows)
        if dispatcher is None or control is None or cache is None or workflows is None:
            raise RuntimeError("the orchestrator's services exist once it has started")
        return [
            Service(c.ORCHESTRATOR_SERVICE, OrchestratorServicer(dispatcher),
                    orchestrator_pb2_grpc.add_OrchestratorServicer_to_server),
            Service(c.HOOK_MANAGER_SERVICE, HookManagerServicer(control),
                    hooks_pb2_grpc.add_HookManagerServicer_to_server),
            Service(c.POLICY_ENGINE_SERVICE, PolicyEngineServicer(control, cache),
                    policies_pb2_grpc.add_PolicyEngineServicer_to_server),
            Service(c.CIRCUIT_BREAKERS_SERVICE, CircuitBreakersServicer(self.breakers, control),
                    circuit_breakers_pb2_grpc.add_CircuitBreakersServicer_to_server),
            Service(c.AUDIT_LOG_SERVICE, AuditLogServicer(self.audit_sink),
                    audit_pb2_grpc.add_AuditLogServicer_to_server),
            Service(c.WORKFLOWS_SERVICE,
                    WorkflowsServicer(workflows, owners_only=self.settings.auth.enabled),
                    workflows_pb2_grpc.add_WorkflowsServicer_to_server),
        ]


def build_app(settings: Settings) -> OrchestratorApp:
    return OrchestratorApp(settings)
