"""JSON Schema checks shared by the registry and the orchestrator."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

import fastjsonschema
import re2
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError, relevance
from referencing import Registry
from referencing.exceptions import Unresolvable

from ._errors import FailedPrecondition


def field_path(prefix: str, path) -> str:
    """`params` + deque(['items', 2, 'name']) → `params.items[2].name`."""
    out = prefix
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


# Patterns are matched by RE2, in time linear in the text: Python's backtracking
# `re` took 19 s for 27 characters against "^(a+)+$", with the service's event
# loop stuck meanwhile. RE2 has no backreferences or lookaround; a schema using
# them is refused at registration.
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False


@functools.lru_cache(maxsize=4096)
def _linear(pattern: str):
    return re2.compile(pattern, _RE2_OPTIONS)


def _pattern(validator, pattern, instance, schema):
    if validator.is_type(instance, "string") and not _linear(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(validator, patterns, instance, schema):
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if _linear(pattern).search(key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


_Validator = validators.extend(Draft202012Validator, {
    "pattern": _pattern, "patternProperties": _pattern_properties})


# Longest pattern a schema may bring at registration. A compiled pattern takes
# memory in proportion to its length (~45 KB for 1,000 characters, ~7 MB for
# 100,000), and up to 4,096 of them stay cached in each service.
MAX_PATTERN = 1000


def _pattern_problems(schema: Mapping[str, Any], field: str,
                      max_length: int | None = None) -> list[tuple[str, str]]:
    found = []
    for path, node in _walk(schema):
        patterns = [((*path, "pattern"), node["pattern"])] \
            if isinstance(node.get("pattern"), str) else []
        if isinstance(node.get("patternProperties"), Mapping):
            patterns += [((*path, "patternProperties", p), p) for p in node["patternProperties"]]
        for where, pattern in patterns:
            if max_length is not None and len(pattern) > max_length:
                found.append((field_path(field, where), f"must be at most {max_length:,} "
                              f"characters, not {len(pattern):,}"))
                continue
            try:
                _linear(pattern)
            except re2.error as exc:
                found.append((field_path(field, where), f"{pattern!r} cannot be matched in "
                              f"linear time (no backreferences or lookaround): {exc}"))
    return found


# As Draft202012Validator.check_schema, which stops at the first problem.
_META = Draft202012Validator(Draft202012Validator.META_SCHEMA,
                             format_checker=Draft202012Validator.FORMAT_CHECKER)


def schema_problems(schema: Mapping[str, Any],
                    field: str = "input_schema") -> list[tuple[str, str]]:
    """Every problem with a JSON Schema itself, as (field, description) pairs: what
    the 2020-12 meta-schema refuses, references that leave the schema or point at
    nothing in it, and patterns RE2 cannot match or longer than `MAX_PATTERN`."""
    errors = sorted(_META.iter_errors(schema), key=lambda e: list(e.absolute_path))
    found = [v for e in errors for v in _error_violations(field, e)]
    found += reference_problems(schema, field)
    found += _pattern_problems(schema, field, MAX_PATTERN)
    return (list(dict.fromkeys(found)) or _branching_problems(schema, field)
            or _loop_problems(schema, field))


# How many subschemas checking a value may visit at one place in it, counted as a
# validator walks the keywords that apply there (allOf, anyOf, oneOf, not,
# if/then/else, dependentSchemas and references; properties and items move to
# another place): an anyOf of two references to a definition that is itself such
# an anyOf, twenty deep, would visit a million and take minutes, at registration
# and at every Dispatch. Nested models only add places, each checked once.
MAX_SUBSCHEMA_VISITS = 1_000
_IN_PLACE_LISTS = ("allOf", "anyOf", "oneOf")
_IN_PLACE_ONE = ("not", "if", "then", "else")


def _branching_problems(schema: Mapping[str, Any], field: str) -> list[tuple[str, str]]:
    anchors = {node["$anchor"]: node for _, node in _walk(schema)
               if isinstance(node.get("$anchor"), str)}
    entered: dict[str, int] = {}  # what each reference target costs, judged once

    def visits(node: Any, stack: frozenset[str]) -> int:
        if not isinstance(node, Mapping):
            return 1
        total = 1
        children = [c for k in _IN_PLACE_LISTS if isinstance(node.get(k), list)
                    for c in node[k]]
        children += [node[k] for k in _IN_PLACE_ONE if k in node]
        if isinstance(node.get("dependentSchemas"), Mapping):
            children += list(node["dependentSchemas"].values())
        for child in children:
            total += visits(child, stack)
            if total > MAX_SUBSCHEMA_VISITS:
                return total
        for key in _REF_KEYWORDS:
            ref = node.get(key)
            if not isinstance(ref, str) or not ref.startswith("#"):
                continue
            if ref in stack:  # a cycle at one place: _loop_problems judges it
                total += 1
                continue
            if ref not in entered:
                entered[ref] = visits(_target(schema, ref[1:], anchors), stack | {ref})
            total += entered[ref]
        return total

    worst = max((visits(node, frozenset()) for _, node in _walk(schema)), default=0)
    if worst <= MAX_SUBSCHEMA_VISITS:
        return []
    return [(field, f"checking a value would visit more than {MAX_SUBSCHEMA_VISITS:,} "
                    "subschemas at one place in it (references that branch into "
                    "references, e.g. an anyOf of definitions that are anyOfs themselves): "
                    "simplify it")]


def _target(schema: Mapping[str, Any], fragment: str, anchors: Mapping[str, Any]) -> Any:
    """The node a reference's `fragment` ("/$defs/Name", "", "name") names, or None."""
    if not fragment.startswith("/"):
        return schema if not fragment else anchors.get(fragment)
    found = json_pointer(schema, fragment)
    return None if found is None else found[1]


def json_pointer(root: Any, fragment: str) -> tuple[tuple, Any] | None:
    """The path and node the JSON Pointer `fragment` ("/$defs/Name", URL-escaped as
    in a `$ref`) names in `root`, or None when it names nothing."""
    path: tuple = ()
    node: Any = root
    for token in unquote(fragment).split("/")[1:]:
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, Mapping) and token in node:
            path, node = (*path, token), node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            path, node = (*path, int(token)), node[int(token)]
        else:
            return None
    return path, node


def _loop_problems(schema: Mapping[str, Any], field: str) -> list[tuple[str, str]]:
    """A schema whose references lead back to themselves before reading any of the
    value ({"$ref": "#"}, two definitions naming each other) can check nothing:
    validating even {} never ends."""
    validator = _Validator(dict(schema), registry=Registry())
    probes: tuple[Any, ...] = ({}, [], "", 0, None)
    for probe in probes:
        try:
            validator.is_valid(probe)
        except RecursionError:
            return [(field, "its references lead back to themselves without reading any "
                            "of the value, so no value can be checked")]
        except Exception:  # noqa: BLE001 - other trouble shows at use, as SCHEMA_UNUSABLE
            return []
    return []


# Keywords whose values are data, not schemas: a "$ref" inside them is not one.
_DATA_KEYWORDS = frozenset({"enum", "const", "default", "examples"})
_REF_KEYWORDS = ("$ref", "$dynamicRef")


def _walk(node: Any, path: tuple = ()):
    """(path, mapping) for every schema object in `node`."""
    if isinstance(node, Mapping):
        yield path, node
        for key, value in node.items():
            if key not in _DATA_KEYWORDS:
                yield from _walk(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, (*path, index))


def reference_problems(schema: Mapping[str, Any],
                       field: str = "input_schema") -> list[tuple[str, str]]:
    """References a schema may not hold: any outside it (a URL or another file,
    which a validator would have to fetch: never done here), and any inside it
    that points at nothing."""
    found = []
    nested_ids = any(path and isinstance(node.get("$id"), str) for path, node in _walk(schema))
    anchors = {node["$anchor"] for _, node in _walk(schema) if isinstance(node.get("$anchor"), str)}
    for path, node in _walk(schema):
        for keyword in _REF_KEYWORDS:
            ref = node.get(keyword)
            if not isinstance(ref, str):
                continue
            where = field_path(field, (*path, keyword))
            if not ref.startswith("#"):
                found.append((where, f"refers to {ref!r}, outside the schema: only references "
                                     "inside it (like '#/$defs/Name') are allowed"))
            elif not nested_ids and not _resolves(schema, ref[1:], anchors):
                found.append((where, f"{ref!r} points at nothing in the schema"))
    return found


def _resolves(schema: Mapping[str, Any], fragment: str, anchors: set[str]) -> bool:
    if not fragment.startswith("/"):
        return not fragment or fragment in anchors
    return _target(schema, fragment, {}) is not None


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
    if any("pattern" in node or "patternProperties" in node for _, node in _walk(schema)):
        return False  # fastjsonschema matches with Python's backtracking re
    return not any(
        (isinstance(node.get("$ref"), str) and not node.keys() <= _ANNOTATIONS)
        or (path and "$id" in node)
        for path, node in _walk(schema))


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
        self._validator = _Validator(dict(schema), registry=Registry()) if schema else None
        self._fast = _fast_check(schema) if schema else None
        problems = (reference_problems(schema) or _pattern_problems(schema, "input_schema")
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
        return [v for e in errors for v in _error_violations(prefix, e)]


def _error_violations(prefix: str, error) -> list[tuple[str, str]]:
    """An error's (field, description) pairs: one per unknown property for
    `additionalProperties: false`, so each names its own field; for an
    `anyOf`/`oneOf` of which only one branch could fit the value (pydantic's
    `Model | None`: the value is not null), that branch's own violations."""
    if error.validator in ("anyOf", "oneOf"):
        branch = _only_fitting_branch(error) if error.context else []
        if branch:
            return [v for e in sorted(branch, key=lambda e: list(e.path))
                    for v in _error_violations(prefix, e)]
        return [(_error_field(prefix, error), _describe(error))]
    if error.validator == "additionalProperties" and error.validator_value is False \
            and isinstance(error.instance, Mapping):
        known = error.schema.get("properties", {})
        patterns = error.schema.get("patternProperties", {})
        unknown = [p for p in error.instance if p not in known
                   and not any(_linear(pattern).search(p) for pattern in patterns)]
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
