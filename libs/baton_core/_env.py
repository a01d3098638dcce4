"""Settings from the environment, checked where they are read: whole numbers,
and the YAML files some settings name.

Importing it takes the standard library only: `_grpc_env` uses it before gRPC
is imported (YAML is imported when a file is read).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any


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


def float_setting(env: Mapping[str, str], name: str, default: float, low: float = 0.0,
                  *, zero_ok: bool = False) -> float:
    """`env[name]` as a number of seconds (or any quantity) above `low` (or 0 with
    `zero_ok`: a wait that can be turned off), `default` when unset or blank; any
    other value raises SettingError naming the variable."""
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        value: float | None = float(raw)
    except ValueError:
        value = None
    if value is None or value != value or value == float("inf") or not (
            value > low or (zero_ok and value == 0)):
        least = "0 or more" if zero_ok and low == 0 else f"greater than {low:g}"
        raise SettingError(f"{name} must be a number {least}, not {raw!r}")
    return value


def parse_yaml(text: str) -> Any:
    """`text` read as YAML; ValueError `not valid YAML: <problem> at line L, column C`."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ValueError(f"not valid YAML: {exc.problem or exc.context}{where}") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"not valid YAML: {exc}") from None


def yaml_setting_file(name: str, path: str | Path) -> Mapping[str, Any]:
    """The mapping at the top of the YAML file that setting `name` names (an empty
    file is an empty mapping); SettingError, naming the setting, the file and the
    line, when it cannot be read or is not a mapping."""
    try:
        data = parse_yaml(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingError(f"{name}={path}: cannot be read: {exc.strerror or exc}") from None
    except ValueError as exc:  # not UTF-8, or not YAML
        problem = "cannot be read: not UTF-8 text" if isinstance(exc, UnicodeDecodeError) \
            else str(exc)
        raise SettingError(f"{name}={path}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise SettingError(f"{name}={path}: expected a mapping at the top level")
    return data
