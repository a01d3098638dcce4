"""The control plane in memory: policies, hooks and breaker overrides, loaded from
SQL and reloaded on every replica when one of them changes something.

Dispatch reads only memory. A replica that changes something reloads and
publishes on a Redis channel, so the others reload too; a periodic reload
catches a missed message.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
from collections.abc import Sequence
from pathlib import Path

import grpc
import redis.asyncio as aioredis
from google.protobuf import json_format
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncEngine

from baton.orchestrator.v1 import hooks_pb2
from baton_core import (
    AuditEntry,
    AuditSink,
    BatonError,
    Outage,
    ServiceCredentials,
    SettingError,
    insecure_channel,
    yaml_setting_file,
)

from . import _constants as k
from ._breakers import Breakers
from ._control_store import ControlStore
from ._external_hooks import ExternalHook, HookSpec
from ._hooks import Hook, HookRegistry
from ._keys import RedisKeys
from ._policies import PolicyBook
from ._policy_convert import parse_spec, policy_from_proto, spec_of, validate

log = logging.getLogger("baton.orchestrator.control")

# How long a stopping replica waits for external post-hooks still being called.
_POST_HOOK_GRACE = 5.0


def _time(stamp) -> dt.datetime | None:
    return stamp.ToDatetime(tzinfo=dt.UTC) if stamp.seconds or stamp.nanos else None


class ControlPlane:
    """Owns the PolicyBook and HookRegistry that Dispatch reads, and keeps them fresh."""

    def __init__(self, policies: PolicyBook, hooks: HookRegistry, builtins: Sequence[Hook],
                 *, redis: aioredis.Redis | None, keys: RedisKeys, breakers: Breakers | None,
                 credentials: ServiceCredentials | None, audit: AuditSink,
                 policies_file: str = "", refresh: float = k.DEFAULT_CONTROL_REFRESH) -> None:
        self.policies = policies
        self.hooks = hooks
        self.builtins = list(builtins)
        self.breakers = breakers
        self._store: ControlStore | None = None
        self._redis = redis
        self._keys = keys
        self._credentials = credentials
        self._audit = audit
        self._policies_file = policies_file
        self._refresh = refresh
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._tasks: list[asyncio.Task] = []
        self._reloading = asyncio.Lock()
        self._feed_outage = Outage(log, "control change feed")

    @property
    def builtin_names(self) -> set[str]:
        return {h.name for h in self.builtins}

    @property
    def store(self) -> ControlStore:
        if self._store is None:
            raise RuntimeError("the control plane is not started")
        return self._store

    def known_hooks(self) -> set[str]:
        return self.hooks.names()

    async def start(self, engine: AsyncEngine) -> None:
        self._store = ControlStore(engine)
        await self.store.migrate()
        self._keys.use_store(await self.store.store_id())
        await self.reload()
        if self._policies_file:
            await self._load_file(Path(self._policies_file))
            await self.reload()
        if self._redis is not None:
            self._tasks.append(asyncio.create_task(self._listen(self._redis),
                                                   name="control-listen"))
        self._tasks.append(asyncio.create_task(self._every(), name="control-refresh"))

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.hooks.drain(_POST_HOOK_GRACE)
        channels, self._channels = self._channels, {}
        for channel in channels.values():
            await channel.close()

    async def reload(self) -> None:
        async with self._reloading:
            policies = []
            for m in await self.store.list_policies():
                try:
                    policies.append(dataclasses.replace(
                        policy_from_proto(m, source=m.source),
                        create_time=_time(m.create_time), update_time=_time(m.update_time)))
                except Exception as exc:  # noqa: BLE001 - one bad row must not stop the rest
                    log.error("stored policy %r cannot be used (%s: %s); it is left out until "
                              "it is updated or deleted", m.name, type(exc).__name__, exc)
            specs = []
            for spec_json, created, updated in await self.store.list_hooks():
                spec = HookSpec.from_proto(_hook_message(spec_json))
                specs.append(dataclasses.replace(spec, create_time=created, update_time=updated))
            external = [ExternalHook(s, self._channel(s.address), self._credentials)
                        for s in specs]
            self.hooks.replace([*self.builtins, *external])
            self.policies.replace(policies)
            if self.breakers is not None:
                self.breakers.overrides = await self.store.breaker_configs()
            await self._close_unused({s.address for s in specs})

    async def changed(self) -> None:
        """Reloads here and tells the other replicas to reload."""
        await self.reload()
        if self._redis is not None:
            try:
                await self._redis.publish(self._keys.control_channel(), "changed")
            except RedisError as exc:
                log.warning("could not announce a control change (%s); other replicas "
                            "reload within %.0fs", exc, self._refresh)

    def _channel(self, address: str) -> grpc.aio.Channel:
        channel = self._channels.get(address)
        if channel is None:
            channel = self._channels[address] = insecure_channel(address)
        return channel

    async def _close_unused(self, used: set[str]) -> None:
        for address in [a for a in self._channels if a not in used]:
            await self._channels.pop(address).close()

    async def _load_file(self, path: Path) -> None:
        """Stores the policies of the YAML file (`policies: [...]`), as given there."""
        data = yaml_setting_file(k.ENV_POLICIES_FILE, path)
        entries = data.get("policies") or []
        if not isinstance(entries, list):
            raise SettingError(f"{k.ENV_POLICIES_FILE}={path}: policies: must be a list")
        for i, entry in enumerate(entries):
            try:
                if not isinstance(entry, dict):
                    raise SettingError("must be a mapping (name, pattern, ...)")
                message = parse_spec(entry)
                # Hooks may be registered after the file is written: warn, run the rest.
                missing = set(message.hooks) - self.known_hooks()
                if missing:
                    log.warning("policy %s in %s names hooks not registered (yet): %s",
                                message.name, path, ", ".join(sorted(missing)))
                validate(message, self.known_hooks() | missing)
            except (BatonError, SettingError) as exc:
                # The service does not start on a file it cannot apply whole.
                problem = exc.message if isinstance(exc, BatonError) else str(exc)
                raise SettingError(f"{k.ENV_POLICIES_FILE}={path}: policies[{i}]: "
                                   f"{problem}") from None
            if await self.store.put_file_policy(message):
                log.info("policy %s loaded from %s", message.name, path)
                self._audit.record(AuditEntry(
                    actor="system:policies-file", action="update", entity_type="policy",
                    entity=message.name, changes=spec_of(message), service="orchestrator"))

    async def _every(self) -> None:
        while True:
            await asyncio.sleep(self._refresh)
            try:
                await self.reload()
            except Exception:  # noqa: BLE001 - try again next time
                log.exception("periodic reload of the control plane failed")

    async def _listen(self, redis: aioredis.Redis) -> None:
        backoff = 0.2
        while True:
            pubsub = redis.pubsub()
            try:
                await pubsub.subscribe(self._keys.control_channel())
                backoff = 0.2
                self._feed_outage.recovered()
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        await self.reload()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - resubscribe whatever happened
                self._feed_outage.failed(str(exc), 5.0)
            finally:
                try:
                    await pubsub.aclose()
                except Exception:  # noqa: BLE001
                    pass
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)


def _hook_message(spec_json: dict) -> hooks_pb2.Hook:
    return json_format.ParseDict(spec_json, hooks_pb2.Hook(), ignore_unknown_fields=True)
