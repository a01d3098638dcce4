"""What a JSON Schema violation says, and which field it names: one (field,
description) pair per problem, for params and for schemas alike."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from jsonschema.exceptions import ValidationError, relevance

from ._convert import field_path
from ._schema_patterns import linear


def error_violations(prefix: str, error) -> list[tuple[str, str]]:
    """An error's (field, description) pairs: one per unknown property for
    `additionalProperties: false`, so each names its own field; for an
    `anyOf`/`oneOf` of which only one branch could fit the value (pydantic's
    `Model | None`: the value is not null), that branch's own violations."""
    if error.validator in ("anyOf", "oneOf"):
        branch = _only_fitting_branch(error) if error.context else []
        if branch:
            return [v for e in sorted(branch, key=lambda e: list(e.path))
                    for v in error_violations(prefix, e)]
        return [(_error_field(prefix, error), _describe(error))]
    if error.validator == "additionalProperties" and error.validator_value is False \
            and isinstance(error.instance, Mapping):
        known = error.schema.get("properties", {})
        patterns = error.schema.get("patternProperties", {})
        unknown = [p for p in error.instance if p not in known
                   and not any(linear(pattern).search(p) for pattern in patterns)]
        if unknown:
            fields = ", ".join(sorted(known)) or "none"
            return [(field_path(prefix, [*error.absolute_path, p]),
                     f"is not a field here (the fields are: {fields})") for p in unknown]
    return [(_error_field(prefix, error), error.message)]


def _only_fitting_branch(error) -> list:
    """The errors of the one branch whose type matches the value, if exactly one does."""
    fitting = _fitting_branches(error)
    return fitting[0] if len(fitting) == 1 else []


def _branches(error) -> list[list]:
    """The errors of an `anyOf`/`oneOf`, one list per alternative."""
    by_branch: dict[int, list] = {}
    for sub in error.context:
        by_branch.setdefault(sub.relative_schema_path[0], []).append(sub)
    return list(by_branch.values())


def _type_miss(errors: list) -> ValidationError | None:
    """The error saying the value itself is not of the branch's type, if any."""
    return next((e for e in errors if e.validator == "type" and not e.relative_path), None)


def _fitting_branches(error) -> list[list]:
    return [errors for errors in _branches(error) if _type_miss(errors) is None]


def _describe(error) -> str:
    """An `anyOf`/`oneOf` failure in words: the alternatives, when the value is of
    none of their types ("must be an integer or null"); else the closest failure."""
    if not error.context:
        return ("fits more than one of the alternatives, and must fit exactly one"
                if error.validator == "oneOf" else error.message)
    fitting = _fitting_branches(error)
    if not fitting:
        return "must be " + _either([k for errors in _branches(error) for k in _kinds(errors)])
    closest = min((e for errors in fitting for e in errors), key=relevance)
    where = field_path("", closest.relative_path).lstrip(".")
    detail = _describe(closest) if closest.validator in ("anyOf", "oneOf") else closest.message
    return (f"fits none of the {len(error.validator_value)} alternatives (closest: "
            f"{where + ': ' if where else ''}{detail})")


_FEW = 10  # values of an enum worth listing in a message
_TYPE_WORDS = {"integer": "an integer", "number": "a number", "string": "a string",
               "boolean": "a boolean", "object": "an object", "array": "an array",
               "null": "null"}


def _kinds(errors: list) -> list[str]:
    """What a branch the value's type does not fit takes: its few values, else its types."""
    for e in errors:
        if not e.relative_path and e.validator == "const":
            return [json.dumps(e.validator_value)]
        if not e.relative_path and e.validator == "enum" and isinstance(e.validator_value, list) \
                and len(e.validator_value) <= _FEW:
            return [json.dumps(v) for v in e.validator_value]
    miss = _type_miss(errors)
    kind: Any = miss.validator_value if miss is not None else []
    return [_TYPE_WORDS.get(k, repr(k)) for k in ([kind] if isinstance(kind, str) else kind)]


def _either(words: list[str]) -> str:
    words = list(dict.fromkeys(words))
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _error_field(prefix: str, error) -> str:
    path = list(error.absolute_path)
    if error.validator == "required" and isinstance(error.instance, Mapping):
        # One error per missing property; name the property, not its parent.
        missing = [p for p in error.validator_value if p not in error.instance]
        named = [p for p in missing if repr(p) in error.message]
        if named:
            path.append(named[0])
    return field_path(prefix, path)
