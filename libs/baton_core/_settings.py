"""Service settings read from environment variables with documented defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from . import _constants as c
from ._auth import AuthConfig
from ._env import float_setting

_DEFAULT_PORTS = {
    "registry": c.REGISTRY_PORT,
    "orchestrator": c.ORCHESTRATOR_PORT,
    "sessions": c.SESSIONS_PORT,
}


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


@dataclass(frozen=True)
class Settings:
    """Settings of one service process.

    Every field comes from an environment variable; see the README's
    configuration table.
    """

    service: str
    listen: str
    data_dir: Path
    database_url: str
    redis_url: str
    registry_addr: str
    orchestrator_addr: str
    sessions_addr: str
    lease_ttl: float = 10.0
    session_ttl: float = 3600.0
    shutdown_grace: float = 5.0
    extra: dict[str, str] = field(default_factory=dict)
    # Settings built in code (tests) default to auth off; from_env reads BATON_AUTH.
    auth: AuthConfig = field(default_factory=lambda: AuthConfig(enabled=False))

    @classmethod
    def from_env(cls, service: str) -> Settings:
        host = _env(c.ENV_HOST, "127.0.0.1")
        data_dir = Path(_env(c.ENV_DATA_DIR, c.DEFAULT_DATA_DIR)).resolve()
        default_db = f"sqlite+aiosqlite:///{data_dir / (service + '.db')}"
        port = _DEFAULT_PORTS.get(service, 0)
        return cls(
            service=service,
            listen=_env(c.ENV_LISTEN, f"{host}:{port}"),
            data_dir=data_dir,
            database_url=_env(c.ENV_DATABASE_URL, default_db),
            redis_url=_env(c.ENV_REDIS_URL, "redis://127.0.0.1:6379/0"),
            registry_addr=_env(c.ENV_REGISTRY_ADDR, f"127.0.0.1:{c.REGISTRY_PORT}"),
            orchestrator_addr=_env(c.ENV_ORCHESTRATOR_ADDR, f"127.0.0.1:{c.ORCHESTRATOR_PORT}"),
            sessions_addr=_env(c.ENV_SESSIONS_ADDR, f"127.0.0.1:{c.SESSIONS_PORT}"),
            lease_ttl=float_setting(os.environ, c.ENV_LEASE_TTL, 10.0),
            session_ttl=float_setting(os.environ, c.ENV_SESSION_TTL, 3600.0),
            shutdown_grace=float_setting(os.environ, c.ENV_GRACE, c.DEFAULT_GRACE, zero_ok=True),
            auth=AuthConfig.from_env(data_dir),
        )
