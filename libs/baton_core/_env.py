"""Whole-number settings from the environment, checked where they are read.

Standard library only: `_grpc_env` uses it before gRPC is imported.
"""

from __future__ import annotations

from collections.abc import Mapping


class SettingError(ValueError):
    """A setting from the environment that cannot be used; the message names it."""


def int_setting(env: Mapping[str, str], name: str, default: int, low: int,
                high: int | None = None) -> int:
    """`env[name]` as an int from `low` to `high`, `default` when unset or blank;
    any other value raises SettingError naming the variable."""
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        value: int | None = int(raw)
    except ValueError:
        value = None
    if value is None or value < low or (high is not None and value > high):
        bounds = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise SettingError(f"{name} must be a whole number {bounds}, not {raw!r}")
    return value
