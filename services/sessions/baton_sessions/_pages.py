"""Opaque page tokens: a position plus a digest of the filters it belongs to."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from baton_core import InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


def page_size(requested: int) -> int:
    if requested < 0:
        raise InvalidArgument("page_size must not be negative",
                              violations=[("page_size", "must be >= 0")])
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def encode(position: Any, *filters: Any) -> str:
    payload = json.dumps({"p": position, "f": _digest(filters)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def decode(token: str, *filters: Any) -> Any:
    """The position in `token`; None for an empty token. Raises InvalidArgument."""
    if not token:
        return None
    try:
        padded = token + "=" * (-len(token) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode()))
        position, digest = payload["p"], payload["f"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise InvalidArgument("page_token is not valid",
                              violations=[("page_token", "not a token from this API")]) from None
    if digest != _digest(filters):
        raise InvalidArgument("page_token belongs to a request with other filters",
                              violations=[("page_token", "filters changed since the token")])
    return position


def _digest(filters: tuple[Any, ...]) -> str:
    return hashlib.sha256(json.dumps(filters).encode()).hexdigest()[:16]
