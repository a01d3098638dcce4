"""Page sizes and opaque page tokens for the List RPCs."""

from __future__ import annotations

import base64
import binascii
import json

from baton_core import InvalidArgument


def page_size(value: int, default: int, maximum: int) -> int:
    """0 means `default`; larger than `maximum` is lowered to it (AIP-158)."""
    if value < 0:
        raise InvalidArgument("page_size must not be negative",
                              violations=[("page_size", "must not be negative")])
    return min(value or default, maximum)


def encode_token(last: str, scope: str) -> str:
    """A token resuming after `last`, valid only for a request with the same `scope`."""
    raw = json.dumps({"after": last, "scope": scope}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str, scope: str) -> str:
    """The name to resume after; "" for no token.

    Raises:
        InvalidArgument: the token is malformed or came from a different request.
    """
    if not token:
        return ""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        after, token_scope = data["after"], data["scope"]
    except (binascii.Error, ValueError, TypeError, KeyError):
        after, token_scope = None, None
    if not isinstance(after, str) or not after or token_scope != scope:
        raise InvalidArgument("page_token is not valid for this request",
                              violations=[("page_token", "not a token from this listing")])
    return after
