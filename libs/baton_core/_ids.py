"""Identifiers: sortable by creation time, unique without coordination."""

from __future__ import annotations

import os
import time


def new_id(prefix: str = "") -> str:
    """A 26-char id: 12 hex digits of milliseconds, then 14 random hex digits."""
    return f"{prefix}{int(time.time() * 1000):012x}{os.urandom(7).hex()}"
