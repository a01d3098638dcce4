"""Page sizes and opaque page tokens of every List RPC (AIP-158).

A token holds the position the next page starts after, and which listing it
belongs to: the RPC and its filters (`scope`), as a digest. A token used with
other filters, one from another listing, or one made up is INVALID_ARGUMENT.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from ._errors import InvalidArgument


def page_size(requested: int, default: int, maximum: int) -> int:
    """0 means `default`; more than `maximum` is lowered to it."""
    if requested < 0:
        raise InvalidArgument("page_size must not be negative",
                              violations=[("page_size", "must not be negative")])
    return min(requested or default, maximum)


def encode_page_token(position: dict[str, Any], scope: str) -> str:
    """A token for the page after `position` (JSON values), good only for `scope`."""
    raw = json.dumps({**position, "s": _digest(scope)}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(token: str, scope: str, **fields: type) -> dict[str, Any]:
    """The position a token of `scope` holds: {} for no token, else each of
    `fields` with its type (a number also fits a 64-bit column)."""
    if not token:
        return {}
    try:
        value = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        value = None
    if not isinstance(value, dict) or value.get("s") != _digest(scope) or not all(
            _fits(value.get(name), kind) for name, kind in fields.items()):
        raise invalid_page_token()
    return {name: value[name] for name in fields}


def invalid_page_token() -> InvalidArgument:
    return InvalidArgument(
        "page_token is not valid here: it is not from a previous page of this listing "
        "with these filters",
        violations=[("page_token", "not a token from a previous page of this listing")])


def _digest(scope: str) -> str:
    return hashlib.sha256(scope.encode()).hexdigest()[:16]


def _fits(value: Any, kind: type) -> bool:
    if not isinstance(value, kind) or isinstance(value, bool):
        return False
    return not isinstance(value, int) or 0 <= value < 2**63
