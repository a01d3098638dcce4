"""JSON Schema checks shared by the registry and the orchestrator."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError


def field_path(prefix: str, path) -> str:
    """`params` + deque(['items', 2, 'name']) → `params.items[2].name`."""
    out = prefix
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def schema_problems(schema: Mapping[str, Any],
                    field: str = "input_schema") -> list[tuple[str, str]]:
    """Problems with a JSON Schema itself, as (field, description) pairs."""
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        return [(field_path(field, exc.path), exc.message)]
    return []


class ParamsValidator:
    """A compiled input schema that reports every violation at once."""

    def __init__(self, schema: Mapping[str, Any] | None) -> None:
        self._validator = Draft202012Validator(dict(schema)) if schema else None

    def violations(self, params: Any, prefix: str = "params") -> list[tuple[str, str]]:
        if self._validator is None:
            return []
        errors = sorted(self._validator.iter_errors(params), key=lambda e: list(e.path))
        return [(_error_field(prefix, e), e.message) for e in errors]


def _error_field(prefix: str, error) -> str:
    path = list(error.absolute_path)
    if error.validator == "required" and isinstance(error.instance, Mapping):
        # One error per missing property; name the property, not its parent.
        missing = [p for p in error.validator_value if p not in error.instance]
        named = [p for p in missing if repr(p) in error.message]
        if named:
            path.append(named[0])
    return field_path(prefix, path)
