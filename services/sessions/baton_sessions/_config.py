"""Tunables of the sessions service, from Settings plus a few env overrides."""

from __future__ import annotations

import os
from dataclasses import dataclass

from baton_core import Settings, float_setting, int_setting

ENV_SWEEP_INTERVAL = "BATON_SESSION_SWEEP_SECONDS"
ENV_REFRESH_INTERVAL = "BATON_SESSION_REFRESH_SECONDS"
ENV_HISTORY_LIMIT = "BATON_SESSION_HISTORY_LIMIT"


@dataclass(frozen=True)
class SessionsConfig:
    """How the sessions service behaves.

    Attributes:
        ttl: Seconds of inactivity after which an active session expires.
        sweep_interval: Seconds between two expiry sweeps of one replica.
        refresh_interval: A hot record is re-read from SQL at least this
            often, which bounds how long Redis can serve a record that
            missed an update while it was unreachable.
        activity_lag: Fraction of `ttl` by which SQL's last_activity_time may
            trail reads that only touched Redis.
        history_limit: Executions per session kept in Redis.
        context_max_bytes: Size limit of a session's context document (JSON).
        watch_poll_interval: Seconds a watcher waits for a wake-up before it
            looks at SQL anyway (the wake-up travels over Redis pub/sub).
        redis_retry_interval: While Redis is unreachable, seconds between two
            attempts to use it; calls in between go straight to SQL.
        redis_timeout: Socket timeout of Redis calls, in seconds.
    """

    ttl: float = 3600.0
    sweep_interval: float = 60.0
    refresh_interval: float = 30.0
    activity_lag: float = 0.1
    history_limit: int = 100
    context_max_bytes: int = 64 * 1024
    watch_poll_interval: float = 1.0
    redis_retry_interval: float = 0.5
    redis_timeout: float = 1.0

    @classmethod
    def from_settings(cls, settings: Settings) -> SessionsConfig:
        ttl = settings.session_ttl
        return cls(
            ttl=ttl,
            sweep_interval=float_setting(os.environ, ENV_SWEEP_INTERVAL,
                                         min(60.0, max(0.05, ttl / 4))),
            refresh_interval=float_setting(os.environ, ENV_REFRESH_INTERVAL, 30.0),
            history_limit=int_setting(os.environ, ENV_HISTORY_LIMIT, 100, 1),
        )
