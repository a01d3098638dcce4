"""Schemas of values that are always JSON objects: a method's params and result
(google.protobuf.Struct on the wire) and a tool's arguments.

A schema no object can meet ({"type": "string"}) would refuse every call, so it
is refused at registration. Only what surely refuses every object is refused:
a schema without "type" ({}, or bare "properties") takes objects, a top-level
"$ref" is followed inside the schema, an "anyOf"/"oneOf" is refused when none
of its alternatives takes an object and an "allOf" when one of them does not;
"not", "if"/"then"/"else" and references through "$id" or anchors are not
judged.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from baton_core import field_path, json_pointer

Violation = tuple[str, str]


def object_problems(schema: Mapping[str, Any], field: str, what: str) -> list[Violation]:
    """Why no JSON object can meet `schema`, if that is sure; `what` names the
    values it checks ("params")."""
    found = _refuses_objects(schema, schema, (), {})
    if found is None:
        return []
    where, why = found
    return [(field_path(field, where), f"{why}: {what} are always a JSON object "
                                       "(a google.protobuf.Struct)")]


Found = tuple[tuple, str] | None


def _refuses_objects(root: Mapping[str, Any], node: Any, path: tuple,
                     refs: dict[str, Found]) -> Found:
    """Where `node` refuses every JSON object and why, or None if some object may fit.

    `refs` holds what each reference target was found to be, so that each is judged
    once, however many paths lead to it (linear, not exponential, in chains of refs);
    one being judged counts as fitting, which ends a cycle.
    """
    if node is False:
        return path, "accepts nothing"
    if not isinstance(node, Mapping):
        return None
    kind = node.get("type")
    kinds = [kind] if isinstance(kind, str) else kind if isinstance(kind, list) else None
    if kinds is not None and "object" not in kinds:
        return (*path, "type"), f"is {json.dumps(kind)}, not \"object\""
    if "const" in node and not isinstance(node["const"], Mapping):
        return (*path, "const"), f"allows only {json.dumps(node['const'])}"
    enum = node.get("enum")
    if isinstance(enum, list) and not any(isinstance(v, Mapping) for v in enum):
        return (*path, "enum"), "allows no object"
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        if ref not in refs:
            refs[ref] = None  # being judged: a cycle back to it fits
            found = json_pointer(root, ref[1:])
            if found is not None:
                refs[ref] = _refuses_objects(root, found[1], found[0], refs)
        if refs[ref]:
            return refs[ref]
    for keyword in ("anyOf", "oneOf", "allOf"):
        branches = node.get(keyword)
        if not isinstance(branches, list) or not branches:
            continue
        refused = [_refuses_objects(root, b, (*path, keyword, i), refs)
                   for i, b in enumerate(branches)]
        if keyword == "allOf" and any(refused):
            return next(r for r in refused if r)
        if keyword != "allOf" and all(refused):
            return (*path, keyword), "no alternative takes an object"
    return None
