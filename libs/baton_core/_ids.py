"""Identifiers: sortable by creation time, unique without coordination."""

from __future__ import annotations

import os
import threading
import time

_RANDOM_MAX = (1 << 56) - 1
_lock = threading.Lock()
_last_ms = 0
_last_random = 0


def new_id(prefix: str = "") -> str:
    """A 26-char id: 12 hex digits of milliseconds, then 14 random hex digits.

    Within one process ids also sort in creation order: an id made in the same
    millisecond as the previous one (or after the clock stepped back) takes
    that one's time and its random part plus one, as ULIDs do.
    """
    global _last_ms, _last_random
    now = int(time.time() * 1000)
    with _lock:
        if now > _last_ms:
            _last_ms, _last_random = now, int.from_bytes(os.urandom(7), "big") >> 1
        else:
            _last_random = (_last_random + 1) & _RANDOM_MAX
        return f"{prefix}{_last_ms:012x}{_last_random:014x}"
