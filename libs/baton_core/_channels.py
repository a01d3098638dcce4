"""Client channels between Baton's processes.

gRPC's default reconnect backoff starts at 1 s and grows 1.6x up to two
minutes, so a channel whose peer was down for a while (a service started
before the registry it watches, a peer restarted by `baton up`) kept failing
for up to that long after the peer was back: an orchestrator started 20 s
before its registry dispatched 14 s after the registry came up. Baton's
channels try again at most every few seconds, and each keeps its own
connections, so one failing channel's backoff is not shared with others to
the same address.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc

RECONNECT_OPTIONS: tuple[tuple[str, Any], ...] = (
    ("grpc.initial_reconnect_backoff_ms", 500),
    ("grpc.max_reconnect_backoff_ms", 5_000),
    ("grpc.use_local_subchannel_pool", 1),
)


def channel_options(options: Sequence[tuple[str, Any]] = ()) -> list[tuple[str, Any]]:
    """RECONNECT_OPTIONS with `options` added (or overriding them)."""
    merged = dict(RECONNECT_OPTIONS)
    merged.update(dict(options))
    return list(merged.items())


def insecure_channel(address: str,
                     options: Sequence[tuple[str, Any]] = ()) -> grpc.aio.Channel:
    """A grpc.aio channel to another Baton process (see the module docstring)."""
    return grpc.aio.insecure_channel(address, options=channel_options(options))
