"""Every Redis key and channel the sessions hot tier uses, in one place.

Keys are laid out for Redis Cluster: everything about one session shares the
hash tag `{<session_id>}`, so the Lua scripts that touch a session's record
and its history stay within one slot. The (user, casefile) index lives in its
own slot, and no script or transaction spans it and a session key.
"""

from __future__ import annotations

PREFIX = "baton:"
SESSION_PREFIX = PREFIX + "sess:"
HISTORY_PREFIX = PREFIX + "shist:"
INDEX_PREFIX = PREFIX + "sidx:"
EVENTS_CHANNEL_PREFIX = PREFIX + "sevt:"


def session_key(session_id: str) -> str:
    """Hash holding one session record (fields in `_cache.py`)."""
    return f"{SESSION_PREFIX}{{{session_id}}}"


def history_key(session_id: str) -> str:
    """Sorted set of the session's most recent executions, scored by commit order."""
    return f"{HISTORY_PREFIX}{{{session_id}}}"


def index_key(user_id: str, casefile_id: str) -> str:
    """String: (user, casefile) → id of the active session.

    The user id's length comes first so that ("a:b", "c") and ("a", "b:c")
    never share a key.
    """
    return f"{INDEX_PREFIX}{{{len(user_id)}:{user_id}:{casefile_id}}}"


def events_channel(session_id: str) -> str:
    """Pub/sub channel that wakes watchers of one session in every replica."""
    return f"{EVENTS_CHANNEL_PREFIX}{{{session_id}}}"


def session_id_of_channel(channel: str) -> str:
    return channel[len(EVENTS_CHANNEL_PREFIX) + 1:-1]
