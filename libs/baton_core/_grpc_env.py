"""gRPC core settings that every Baton process applies before gRPC loads.

grpc.aio hands each I/O event from gRPC's EventEngine threads to its poller
thread, and from there to the event loop. On gRPC's older iomgr path the
poller thread polls the sockets itself, which is one thread hop fewer per
event. On a 2-core box, a relay hop (the orchestrator's shape) costs about 30%
less CPU and latency that way. The figures are in the README, and
`bench/bench_dispatch.py` measures both settings.

gRPC reads GRPC_EXPERIMENTS once, when it is imported, so this module has to
run before anything imports grpc: `baton_core`, `baton_sdk` and `baton_cli`
import it first. A GRPC_EXPERIMENTS that is already set wins, and
BATON_GRPC_EVENT_ENGINE=on keeps gRPC's defaults.
"""

from __future__ import annotations

import os

ENV_EVENT_ENGINE = "BATON_GRPC_EVENT_ENGINE"
LEGACY_IO = "-event_engine_client,-event_engine_listener"


def apply() -> None:
    """Asks gRPC for the iomgr path unless told otherwise."""
    if os.environ.get(ENV_EVENT_ENGINE, "off").strip().lower() not in ("on", "1", "true", "yes"):
        os.environ.setdefault("GRPC_EXPERIMENTS", LEGACY_IO)


apply()
