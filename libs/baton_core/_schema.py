"""JSON Schema checks shared by the registry and the orchestrator."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import fastjsonschema
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


# Keywords fastjsonschema (drafts 4-7) does not know; it would ignore them and
# accept what 2020-12 rejects, so schemas using them take the slow path only.
_NEWER_KEYWORDS = frozenset({
    "prefixItems", "unevaluatedProperties", "unevaluatedItems", "dependentSchemas",
    "dependentRequired", "$dynamicRef", "$dynamicAnchor", "$recursiveRef", "contentSchema",
    "minContains", "maxContains",
})


def _uses_newer_keywords(node: Any) -> bool:
    if isinstance(node, Mapping):
        return any(k in _NEWER_KEYWORDS or _uses_newer_keywords(v) for k, v in node.items())
    if isinstance(node, list):
        return any(_uses_newer_keywords(v) for v in node)
    return False


def _fast_check(schema: Mapping[str, Any]):
    """A compiled yes/no check for the common case, or None where it cannot be trusted."""
    if _uses_newer_keywords(schema):
        return None
    try:
        return fastjsonschema.compile(dict(schema), use_formats=False)
    except Exception:  # noqa: BLE001 - any schema it cannot compile takes the slow path
        return None


class ParamsValidator:
    """A compiled input schema that reports every violation at once.

    Valid params (the hot path) are confirmed by fastjsonschema's compiled
    check; anything else goes to jsonschema (2020-12), which is authoritative
    and lists every violation.
    """

    def __init__(self, schema: Mapping[str, Any] | None) -> None:
        self._validator = Draft202012Validator(dict(schema)) if schema else None
        self._fast = _fast_check(schema) if schema else None

    def violations(self, params: Any, prefix: str = "params") -> list[tuple[str, str]]:
        if self._validator is None:
            return []
        if self._fast is not None:
            try:
                self._fast(params)
                return []
            except fastjsonschema.JsonSchemaException:
                pass
        errors = sorted(self._validator.iter_errors(params), key=lambda e: list(e.path))
        return [v for e in errors for v in _error_violations(prefix, e)]


def _error_violations(prefix: str, error) -> list[tuple[str, str]]:
    """An error's (field, description) pairs: one per unknown property for
    `additionalProperties: false`, so each names its own field."""
    if error.validator == "additionalProperties" and error.validator_value is False \
            and isinstance(error.instance, Mapping):
        known = error.schema.get("properties", {})
        patterns = error.schema.get("patternProperties", {})
        unknown = [p for p in error.instance if p not in known
                   and not any(re.search(pattern, p) for pattern in patterns)]
        if unknown:
            fields = ", ".join(sorted(known)) or "none"
            return [(field_path(prefix, [*error.absolute_path, p]),
                     f"is not a field here (the fields are: {fields})") for p in unknown]
    return [(_error_field(prefix, error), error.message)]


def _error_field(prefix: str, error) -> str:
    path = list(error.absolute_path)
    if error.validator == "required" and isinstance(error.instance, Mapping):
        # One error per missing property; name the property, not its parent.
        missing = [p for p in error.validator_value if p not in error.instance]
        named = [p for p in missing if repr(p) in error.message]
        if named:
            path.append(named[0])
    return field_path(prefix, path)
