"""SQL storage of the control plane: policies, external hooks, breaker configs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from google.protobuf import field_mask_pb2
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from baton.orchestrator.v1 import policies_pb2
from baton_core import (
    Aborted,
    AlreadyExists,
    InvalidArgument,
    NotFound,
    datetime_to_timestamp,
    finish_before_cancel,
    migrate,
    new_etag,
    read_store_id,
)

from . import _constants as k
from ._control_tables import breaker_configs, hooks, meta, policies
from ._policies import BreakerConfig
from ._policy_convert import MUTABLE_PATHS, parse_spec, spec_of, update_paths

MIGRATIONS = str(Path(__file__).parent / "control_migrations")

Validator = Callable[[policies_pb2.Policy], None]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _policy(row) -> policies_pb2.Policy:
    message = parse_spec(row.spec)
    message.etag, message.source = row.etag, row.source
    message.create_time.CopyFrom(datetime_to_timestamp(_utc(row.create_time)))
    message.update_time.CopyFrom(datetime_to_timestamp(_utc(row.update_time)))
    return message


class ControlStore:
    """Policies, hooks and breaker configs in the orchestrator's database."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def migrate(self) -> None:
        await migrate(self.engine, MIGRATIONS, k.CONTROL_VERSION_TABLE)

    async def store_id(self) -> str:
        """The random name of this database, which scopes the orchestrator's keys
        in Redis."""
        return await read_store_id(self.engine, meta)

    # Policies -----------------------------------------------------------------------------

    async def list_policies(self) -> list[policies_pb2.Policy]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(sa.select(policies).order_by(policies.c.name))
            return [_policy(row) for row in rows]

    async def _stored(self, name: str) -> policies_pb2.Policy:
        """The policy just written (a delete in between: NOT_FOUND)."""
        stored = await self.get_policy(name)
        if stored is None:
            raise NotFound(f"no policy named {name!r}", reason="POLICY_NOT_FOUND",
                           metadata={"policy": name})
        return stored

    async def get_policy(self, name: str) -> policies_pb2.Policy | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(
                sa.select(policies).where(policies.c.name == name))).first()
            return None if row is None else _policy(row)

    @finish_before_cancel
    async def create_policy(self, message: policies_pb2.Policy,
                            source: str = "api") -> policies_pb2.Policy:
        now = _now()
        values = {"name": message.name, "pattern": message.pattern, "spec": spec_of(message),
                  "etag": new_etag(), "source": source, "create_time": now, "update_time": now}
        try:
            async with self.engine.begin() as conn:
                clash = (await conn.execute(sa.select(policies.c.name).where(sa.or_(
                    policies.c.name == message.name,
                    policies.c.pattern == message.pattern)))).first()
                if clash is not None:
                    raise self._taken(message, clash.name)
                await conn.execute(sa.insert(policies).values(**values))
        except IntegrityError:
            raise AlreadyExists(f"a policy named {message.name!r} or with pattern "
                                f"{message.pattern!r} exists", reason="POLICY_EXISTS") from None
        return await self._stored(message.name)

    @staticmethod
    def _taken(message: policies_pb2.Policy, other: str) -> AlreadyExists:
        if other == message.name:
            return AlreadyExists(f"a policy named {message.name!r} exists",
                                 reason="POLICY_EXISTS", metadata={"policy": message.name})
        return AlreadyExists(f"policy {other!r} already has pattern {message.pattern!r}",
                             reason="PATTERN_TAKEN",
                             metadata={"policy": other, "pattern": message.pattern})

    @finish_before_cancel
    async def update_policy(self, message: policies_pb2.Policy,
                            mask: field_mask_pb2.FieldMask, validate: Validator,
                            base: policies_pb2.Policy | None = None) -> policies_pb2.Policy:
        """Applies `mask` of `message` to the stored policy (or to `base`, stored anew)."""
        paths = update_paths(message, list(mask.paths))
        bad = [p for p in paths if p.split(".")[0] not in MUTABLE_PATHS]
        if bad:
            raise InvalidArgument(f"cannot update {', '.join(bad)}", reason="INVALID_MASK",
                                  violations=[("update_mask", f"unknown or read-only path {p}")
                                              for p in bad])
        async with self.engine.begin() as conn:
            row = (await conn.execute(
                sa.select(policies).where(policies.c.name == message.name)
                .with_for_update())).first()
            current = _policy(row) if row is not None else base
            if current is None:
                raise NotFound(f"no policy named {message.name!r}", reason="POLICY_NOT_FOUND",
                               metadata={"policy": message.name})
            if message.etag and message.etag != current.etag:
                raise Aborted(f"policy {message.name!r} changed since it was read (etag)",
                              reason="ETAG_MISMATCH", metadata={"policy": message.name})
            updated = policies_pb2.Policy()
            updated.CopyFrom(current)
            field_mask_pb2.FieldMask(paths=paths).MergeMessage(
                message, updated, replace_message_field=True, replace_repeated_field=True)
            validate(updated)
            clash = (await conn.execute(sa.select(policies.c.name).where(
                policies.c.pattern == updated.pattern,
                policies.c.name != updated.name))).first()
            if clash is not None:
                raise self._taken(updated, clash.name)
            now = _now()
            values = {"pattern": updated.pattern, "spec": spec_of(updated), "etag": new_etag(),
                      "update_time": now, "source": "api"}
            if row is None:
                await conn.execute(sa.insert(policies).values(
                    name=updated.name, create_time=now, **values))
            else:
                await conn.execute(sa.update(policies).where(
                    policies.c.name == updated.name).values(**values))
        return await self._stored(message.name)

    @finish_before_cancel
    async def delete_policy(self, name: str, etag: str = "") -> None:
        async with self.engine.begin() as conn:
            row = (await conn.execute(sa.select(policies.c.etag).where(
                policies.c.name == name))).first()
            if row is None:
                raise NotFound(f"no policy named {name!r}", reason="POLICY_NOT_FOUND",
                               metadata={"policy": name})
            if etag and etag != row.etag:
                raise Aborted(f"policy {name!r} changed since it was read (etag)",
                              reason="ETAG_MISMATCH", metadata={"policy": name})
            await conn.execute(sa.delete(policies).where(policies.c.name == name))

    @finish_before_cancel
    async def put_file_policy(self, message: policies_pb2.Policy) -> bool:
        """Stores a policy from the policies file unless it is already stored as is;
        returns whether anything changed."""
        spec = spec_of(message)
        async with self.engine.begin() as conn:
            row = (await conn.execute(sa.select(policies).where(
                policies.c.name == message.name).with_for_update())).first()
            if row is not None and row.spec == spec and row.pattern == message.pattern:
                return False
            now = _now()
            values = {"pattern": message.pattern, "spec": spec, "etag": new_etag(),
                      "source": "file", "update_time": now}
            await conn.execute(sa.delete(policies).where(
                policies.c.pattern == message.pattern, policies.c.name != message.name))
            if row is None:
                await conn.execute(sa.insert(policies).values(
                    name=message.name, create_time=now, **values))
            else:
                await conn.execute(sa.update(policies).where(
                    policies.c.name == message.name).values(**values))
        return True

    # Hooks --------------------------------------------------------------------------------

    async def list_hooks(self) -> list[tuple[dict, dt.datetime, dt.datetime]]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(sa.select(hooks).order_by(hooks.c.name))
            return [(row.spec, _utc(row.create_time), _utc(row.update_time)) for row in rows]

    @finish_before_cancel
    async def put_hook(self, name: str, spec: dict) -> bool:
        """Creates or replaces a hook; returns True when it is new."""
        now = _now()
        async with self.engine.begin() as conn:
            found = (await conn.execute(sa.select(hooks.c.name).where(
                hooks.c.name == name).with_for_update())).first()
            if found is None:
                await conn.execute(sa.insert(hooks).values(
                    name=name, spec=spec, create_time=now, update_time=now))
                return True
            await conn.execute(sa.update(hooks).where(hooks.c.name == name).values(
                spec=spec, update_time=now))
            return False

    @finish_before_cancel
    async def delete_hook(self, name: str) -> bool:
        async with self.engine.begin() as conn:
            result = await conn.execute(sa.delete(hooks).where(hooks.c.name == name))
            return result.rowcount > 0

    # Breaker configs ----------------------------------------------------------------------

    async def breaker_configs(self) -> dict[str, BreakerConfig]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(sa.select(breaker_configs))
            return {row.endpoint: BreakerConfig(row.failure_threshold, row.open_timeout,
                                                row.half_open_max_calls) for row in rows}

    @finish_before_cancel
    async def put_breaker_config(self, endpoint: str, config: BreakerConfig) -> None:
        values = {"failure_threshold": config.failure_threshold,
                  "open_timeout": config.open_timeout,
                  "half_open_max_calls": config.half_open_max_calls, "update_time": _now()}
        async with self.engine.begin() as conn:
            result = await conn.execute(sa.update(breaker_configs).where(
                breaker_configs.c.endpoint == endpoint).values(**values))
            if result.rowcount == 0:
                await conn.execute(sa.insert(breaker_configs).values(endpoint=endpoint, **values))

    @finish_before_cancel
    async def delete_breaker_config(self, endpoint: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(sa.delete(breaker_configs).where(
                breaker_configs.c.endpoint == endpoint))
