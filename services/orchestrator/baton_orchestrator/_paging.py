"""Opaque page tokens and page sizes of the orchestrator's listings (workflows, runs,
steps, events, audit records)."""

from __future__ import annotations

import base64
import json
from typing import Any

from baton_core import InvalidArgument


def page_size(requested: int, default: int, maximum: int) -> int:
    if requested < 0:
        raise InvalidArgument("page_size must not be negative",
                              violations=[("page_size", "must not be negative")])
    return min(requested or default, maximum)


def encode(position: dict[str, Any], scope: str) -> str:
    """A token for the page after `position`, good only for the listing `scope`
    names (the RPC and its filters)."""
    return base64.urlsafe_b64encode(json.dumps({**position, "s": scope}).encode()).decode()


def decode(token: str, scope: str, **fields: type) -> dict[str, Any]:
    """The position a token of the listing `scope` holds: {} for no token, else
    each of `fields` with its type. Anything else is INVALID_ARGUMENT: a token of
    another listing, or of this one with other filters, or made up."""
    if not token:
        return {}
    try:
        value = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, UnicodeDecodeError):
        value = None
    if not isinstance(value, dict) or value.get("s") != scope or not all(
            _fits(value.get(name), kind) for name, kind in fields.items()):
        raise invalid_token()
    return value


def _fits(value: Any, kind: type) -> bool:
    """`value` is of `kind`; a number also fits a 64-bit column, as the positions do."""
    if not isinstance(value, kind) or isinstance(value, bool):
        return False
    return not isinstance(value, int) or 0 <= value < 2**63


def invalid_token() -> InvalidArgument:
    return InvalidArgument(
        "page_token is not valid here: it is not from a previous page of this listing "
        "with these filters",
        violations=[("page_token", "not a token from a previous page of this listing")])
