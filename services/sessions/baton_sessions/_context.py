"""The session context document: FieldMask semantics and the size limit."""

from __future__ import annotations

import json
from typing import Any

from baton_core import InvalidArgument


def check_paths(paths: list[str], field: str = "update_mask.paths") -> None:
    """Only top-level keys may be named: the document is flat for masking."""
    bad = [(f"{field}[{i}]", f"{p!r} is not a top-level key")
           for i, p in enumerate(paths) if not p or "." in p]
    if bad:
        raise InvalidArgument(f"{field.split('.')[0]} may only name top-level keys",
                              violations=bad)


def apply_mask(document: dict[str, Any], values: dict[str, Any],
               paths: list[str]) -> dict[str, Any]:
    """An empty mask replaces the document; otherwise each named key is set or removed."""
    if not paths:
        return dict(values)
    result = dict(document)
    for path in paths:
        if path in values:
            result[path] = values[path]
        else:
            result.pop(path, None)
    return result


def check_size(document: dict[str, Any], max_bytes: int, *, what: str = "context document",
               field: str = "values") -> None:
    """INVALID_ARGUMENT when `document` as compact JSON is over `max_bytes`."""
    size = len(json.dumps(document, separators=(",", ":")).encode())
    if size > max_bytes:
        raise InvalidArgument(
            f"{what} is {size} bytes as JSON; the limit is {max_bytes}",
            violations=[(field, f"{what} would be {size} bytes, over {max_bytes}")])
