"""Identifiers: sortable by creation time, unique without coordination."""

from __future__ import annotations

import os
import random
import threading
import time

_RANDOM_MAX = (1 << 56) - 1
_lock = threading.Lock()
_last_ms = 0
_last_random = 0
# Seeded from os.urandom, and again in a forked child. Drawing from it makes no
# system call (os.urandom makes one, and lets go of the GIL for it, on the event
# loop's thread).
_random = random.Random()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_random.seed)


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
            _last_ms, _last_random = now, _random.getrandbits(55)
        else:
            _last_random = (_last_random + 1) & _RANDOM_MAX
        return f"{prefix}{_last_ms:012x}{_last_random:014x}"


def new_etag() -> str:
    """16 random hex digits: a resource's version tag (a change check, not a secret)."""
    return f"{_random.getrandbits(64):016x}"
