"""Every Redis key and channel the sessions hot tier uses, in one place.

Keys are laid out for Redis Cluster: everything about one session shares the
hash tag `{<session_id>}`, so the Lua scripts that touch a session's record
and its history stay within one slot. The (user, casefile) index lives in its
own slot, and no script or transaction spans it and a session key.

Every key and channel carries the store id of the SQL database the service
uses (`sessions_meta`, made by its migration). Redis holds copies of what
that database holds, so two databases behind one Redis (two deployments, or
a database made afresh while Redis kept the old one's sessions) never see
each other's copies: a (user, casefile) index entry of another database
would name a session this one does not have.
"""

from __future__ import annotations

from baton_core import key_prefix


class Keys:
    """The keys and channels of one store (SQL database)."""

    def __init__(self, store_id: str) -> None:
        self.store_id = store_id
        base = key_prefix(store_id)
        self._session = base + "sess:"
        self._history = base + "shist:"
        self._index = base + "sidx:"
        self._channel = base + "sevt:"

    def session(self, session_id: str) -> str:
        """Hash holding one session record (fields in `_cache.py`)."""
        return f"{self._session}{{{session_id}}}"

    def history(self, session_id: str) -> str:
        """Sorted set of the session's most recent executions, scored by commit order."""
        return f"{self._history}{{{session_id}}}"

    def index(self, user_id: str, casefile_id: str) -> str:
        """String: (user, casefile) → id of the active session.

        The user id's length comes first so that ("a:b", "c") and ("a", "b:c")
        never share a key.
        """
        return f"{self._index}{{{len(user_id)}:{user_id}:{casefile_id}}}"

    def channel(self, session_id: str) -> str:
        """Pub/sub channel that wakes watchers of one session in every replica."""
        return f"{self._channel}{{{session_id}}}"

    def session_id_of_channel(self, channel: str) -> str:
        return channel[len(self._channel) + 1:-1]
