"""Opaque page tokens and page sizes."""

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


def encode(position: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode()


def decode(token: str) -> dict[str, Any]:
    if not token:
        return {}
    try:
        value = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidArgument("page_token is not valid",
                              violations=[("page_token", "not a token from a previous page")]
                              ) from exc
    if not isinstance(value, dict):
        raise InvalidArgument("page_token is not valid",
                              violations=[("page_token", "not a token from a previous page")])
    return value
