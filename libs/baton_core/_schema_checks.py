"""Checks of a JSON Schema itself, made when a method or tool is registered: what
the 2020-12 meta-schema refuses, references, patterns, and schemas too costly
(or impossible) to check a value against."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

import re2
from jsonschema import Draft202012Validator
from referencing import Registry

from ._convert import field_path
from ._schema_messages import error_violations
from ._schema_patterns import Validator, linear

# Longest pattern a schema may bring at registration. A compiled pattern takes
# memory in proportion to its length (~45 KB for 1,000 characters, ~7 MB for
# 100,000), and up to 4,096 of them stay cached in each service.
MAX_PATTERN = 1000


def pattern_problems(schema: Mapping[str, Any], field: str,
                     max_length: int | None = None) -> list[tuple[str, str]]:
    found = []
    for path, node in walk(schema):
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
                linear(pattern)
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
    found = [v for e in errors for v in error_violations(field, e)]
    found += reference_problems(schema, field)
    found += pattern_problems(schema, field, MAX_PATTERN)
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
    anchors = {node["$anchor"]: node for _, node in walk(schema)
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

    worst = max((visits(node, frozenset()) for _, node in walk(schema)), default=0)
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
    validator = Validator(dict(schema), registry=Registry())
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


def walk(node: Any, path: tuple = ()):
    """(path, mapping) for every schema object in `node`."""
    if isinstance(node, Mapping):
        yield path, node
        for key, value in node.items():
            if key not in _DATA_KEYWORDS:
                yield from walk(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, (*path, index))


def reference_problems(schema: Mapping[str, Any],
                       field: str = "input_schema") -> list[tuple[str, str]]:
    """References a schema may not hold: any outside it (a URL or another file,
    which a validator would have to fetch: never done here), and any inside it
    that points at nothing."""
    found = []
    nested_ids = any(path and isinstance(node.get("$id"), str) for path, node in walk(schema))
    anchors = {node["$anchor"] for _, node in walk(schema) if isinstance(node.get("$anchor"), str)}
    for path, node in walk(schema):
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

