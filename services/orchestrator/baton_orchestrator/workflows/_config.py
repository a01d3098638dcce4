"""The workflow engine's settings, from the environment (see the README's table)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from baton_core import float_setting, int_setting

from . import _constants as k


@dataclass(frozen=True)
class EngineConfig:
    lease_seconds: float = k.DEFAULT_RUN_LEASE
    replica_id: str = ""
    max_active_runs: int = k.DEFAULT_MAX_ACTIVE_RUNS
    max_starting_runs: int = k.DEFAULT_MAX_STARTING_RUNS
    default_concurrency: int = k.DEFAULT_MAX_CONCURRENCY
    drain_seconds: float = k.DEFAULT_DRAIN

    @classmethod
    def from_env(cls, overrides: Mapping[str, str] | None = None) -> EngineConfig:
        """From the environment; `overrides` (e.g. Settings.extra) win over it."""
        env = {**os.environ, **(overrides or {})}
        return cls(lease_seconds=float_setting(env, k.ENV_RUN_LEASE, k.DEFAULT_RUN_LEASE),
                   replica_id=env.get(k.ENV_REPLICA_ID, ""),
                   max_active_runs=int_setting(env, k.ENV_MAX_ACTIVE_RUNS,
                                               k.DEFAULT_MAX_ACTIVE_RUNS, 1),
                   max_starting_runs=int_setting(env, k.ENV_MAX_STARTING_RUNS,
                                                 k.DEFAULT_MAX_STARTING_RUNS, 1),
                   drain_seconds=float_setting(env, k.ENV_DRAIN, k.DEFAULT_DRAIN, zero_ok=True))
