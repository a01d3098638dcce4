"""JSON Schema checks shared by the registry and the orchestrator: params checked
against a method's input schema (the checks of a schema itself are in
_schema_checks, what a violation says in _schema_messages)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import fastjsonschema
from referencing import Registry
from referencing.exceptions import Unresolvable

from ._errors import FailedPrecondition
from ._schema_checks import pattern_problems, reference_problems, walk
from ._schema_messages import error_violations
from ._schema_patterns import Validator

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


# Keywords that only annotate: beside a "$ref" they change nothing.
_ANNOTATIONS = frozenset({"$ref", "title", "description", "default", "examples", "$comment",
                          "deprecated", "readOnly", "writeOnly"})


def _fast_path_trusted(schema: Mapping[str, Any]) -> bool:
    """Whether fastjsonschema (drafts 4-7) judges `schema` as 2020-12 does: no newer
    keywords, no keyword beside a "$ref" (drafts 4-7 ignore those), and every
    reference inside the schema."""
    if _uses_newer_keywords(schema) or reference_problems(schema):
        return False
    if any("pattern" in node or "patternProperties" in node for _, node in walk(schema)):
        return False  # fastjsonschema matches with Python's backtracking re
    return not any(
        (isinstance(node.get("$ref"), str) and not node.keys() <= _ANNOTATIONS)
        or (path and "$id" in node)
        for path, node in walk(schema))


def _refuse_fetch(uri: str) -> Any:
    raise ValueError(f"{uri} is outside the schema; it is not fetched")


# fastjsonschema fetches remote references with urlopen unless a handler answers.
_NO_FETCH = {scheme: _refuse_fetch for scheme in ("http", "https", "ftp", "file", "data")}


def _fast_check(schema: Mapping[str, Any]):
    """A compiled yes/no check for the common case, or None where it cannot be trusted."""
    if not _fast_path_trusted(schema):
        return None
    try:
        return fastjsonschema.compile(dict(schema), handlers=_NO_FETCH, use_default=False,
                                      use_formats=False)
    except Exception:  # noqa: BLE001 - any schema it cannot compile takes the slow path
        return None


class ParamsValidator:
    """A compiled input schema that reports every violation at once.

    Valid params (the hot path) are confirmed by fastjsonschema's compiled
    check; anything else goes to jsonschema (2020-12), which is authoritative
    and lists every violation.
    """

    def __init__(self, schema: Mapping[str, Any] | None) -> None:
        # An empty registry: a reference outside the schema is never fetched (the
        # registry refuses such schemas; one stored before that is unusable).
        self._validator = Validator(dict(schema), registry=Registry()) if schema else None
        self._fast = _fast_check(schema) if schema else None
        problems = (reference_problems(schema) or pattern_problems(schema, "input_schema")
                    if schema else [])
        self.unusable = "; ".join(f"{field}: {why}" for field, why in problems)

    def violations(self, params: Any, prefix: str = "params") -> list[tuple[str, str]]:
        """Every violation of the schema by `params`.

        Raises:
            FailedPrecondition: the schema holds a reference it cannot resolve.
        """
        if self._validator is None:
            return []
        if self.unusable:
            raise FailedPrecondition(f"the input schema cannot be used: {self.unusable}",
                                     reason="SCHEMA_UNUSABLE")
        if self._fast is not None:
            try:
                self._fast(params)
                return []
            except fastjsonschema.JsonSchemaException:
                pass
        try:
            errors = sorted(self._validator.iter_errors(params), key=lambda e: list(e.path))
        except Unresolvable as exc:
            raise FailedPrecondition(f"the input schema cannot be used: {exc}",
                                     reason="SCHEMA_UNUSABLE") from None
        except RecursionError:
            raise FailedPrecondition("the input schema cannot be used: its references "
                                     "lead back to themselves", reason="SCHEMA_UNUSABLE"
                                     ) from None
        return [v for e in errors for v in error_violations(prefix, e)]
