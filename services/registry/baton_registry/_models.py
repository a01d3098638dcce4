"""The registry's values: plain frozen dataclasses, free of protobuf."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any


class EndpointState(StrEnum):
    AVAILABLE = "AVAILABLE"
    UNAVAILABLE = "UNAVAILABLE"


class ChangeType(StrEnum):
    EXISTING = "EXISTING"
    SYNCED = "SYNCED"
    UPSERTED = "UPSERTED"
    DELETED = "DELETED"


@dataclass(frozen=True)
class Endpoint:
    """One worker serving a method under a lease."""

    worker_id: str
    address: str
    state: EndpointState
    lease_expire_time: dt.datetime


@dataclass(frozen=True)
class Method:
    """A registered method; `endpoints` and the times are filled in by the store."""

    name: str
    version: str = ""
    description: str = ""
    domain: str = ""
    tags: tuple[str, ...] = ()
    input_schema: dict[str, Any] = field(default_factory=dict)
    output_schema: dict[str, Any] = field(default_factory=dict)
    default_timeout: float = 0.0
    # Keys: strategy (enum value name), max_attempts, initial_delay, max_delay
    # (seconds), multiplier, retryable_codes.
    retry_policy: dict[str, Any] = field(default_factory=dict)
    idempotent: bool = False
    endpoints: tuple[Endpoint, ...] = ()
    create_time: dt.datetime | None = None
    update_time: dt.datetime | None = None

    def with_default_domain(self) -> Method:
        return self if self.domain else replace(self, domain=self.name.split(".", 1)[0])

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict, as stored in the outbox."""
        return {
            "name": self.name, "version": self.version, "description": self.description,
            "domain": self.domain, "tags": list(self.tags),
            "input_schema": self.input_schema, "output_schema": self.output_schema,
            "default_timeout": self.default_timeout, "retry_policy": self.retry_policy,
            "idempotent": self.idempotent,
            "endpoints": [
                {"worker_id": e.worker_id, "address": e.address, "state": e.state.value,
                 "lease_expire_time": e.lease_expire_time.isoformat()}
                for e in self.endpoints
            ],
            "create_time": _iso(self.create_time), "update_time": _iso(self.update_time),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Method:
        endpoints = tuple(
            Endpoint(e["worker_id"], e["address"], EndpointState(e["state"]),
                     dt.datetime.fromisoformat(e["lease_expire_time"]))
            for e in data.get("endpoints", ())
        )
        return cls(
            name=data["name"], version=data["version"], description=data["description"],
            domain=data["domain"], tags=tuple(data["tags"]),
            input_schema=data["input_schema"], output_schema=data["output_schema"],
            default_timeout=data["default_timeout"], retry_policy=data["retry_policy"],
            idempotent=data["idempotent"], endpoints=endpoints,
            create_time=_from_iso(data["create_time"]),
            update_time=_from_iso(data["update_time"]),
        )


@dataclass(frozen=True)
class Tool:
    """An LLM-facing view of a method."""

    name: str
    method: str
    description: str = ""
    parameters_schema: dict[str, Any] = field(default_factory=dict)
    parameter_mapping: dict[str, str] = field(default_factory=dict)
    create_time: dt.datetime | None = None


@dataclass(frozen=True)
class WorkerLease:
    """A worker claiming to serve methods until `expire_time`."""

    worker_id: str
    address: str
    expire_time: dt.datetime


@dataclass(frozen=True)
class Change:
    """One event of a watch; `method` holds only the name for DELETED."""

    type: ChangeType
    method: Method | None = None


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def _from_iso(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None
