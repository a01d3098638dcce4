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

The poller thread wakes once per gRPC event only to hand it to the event loop,
and at equal priority the kernel lets each wake-up preempt the loop: ~6 times
per Dispatch in the orchestrator, whose loop is the busiest thread of the
platform. `lower_poller_priority` gives the poller thread a higher nice value
(BATON_GRPC_POLLER_NICE, default 10; 0 leaves it alone), so that it runs when
a core is free or the loop waits, not in the middle of the loop's work.
Raising a thread's own nice value needs no privilege.
"""

from __future__ import annotations

import logging
import os
import threading

from ._env import SettingError, int_setting

ENV_EVENT_ENGINE = "BATON_GRPC_EVENT_ENGINE"
LEGACY_IO = "-event_engine_client,-event_engine_listener"
ENV_POLLER_NICE = "BATON_GRPC_POLLER_NICE"
DEFAULT_POLLER_NICE = 10
_POLLER_TARGET = "(_poll_wrapper)"  # grpc.aio's poller thread, as threading names it

log = logging.getLogger("baton.grpc")


_ON, _OFF = ("on", "1", "true", "yes"), ("off", "0", "false", "no", "")


def apply() -> None:
    """Asks gRPC for the iomgr path unless told otherwise (a value that is neither
    on nor off counts as off here, at import, and is refused by check_settings)."""
    if os.environ.get(ENV_EVENT_ENGINE, "off").strip().lower() not in _ON:
        os.environ.setdefault("GRPC_EXPERIMENTS", LEGACY_IO)


def check_settings() -> None:
    """SettingError for a BATON_GRPC_EVENT_ENGINE or BATON_GRPC_POLLER_NICE that
    cannot be used; a server checks them as it starts."""
    raw = os.environ.get(ENV_EVENT_ENGINE, "")
    if raw.strip().lower() not in _ON + _OFF:
        raise SettingError(f"{ENV_EVENT_ENGINE} must be on or off, not {raw!r}")
    poller_nice()


apply()


def poller_nice() -> int:
    """The nice value asked for the poller thread (BATON_GRPC_POLLER_NICE)."""
    return int_setting(os.environ, ENV_POLLER_NICE, DEFAULT_POLLER_NICE, 0, 19)


def lower_poller_priority() -> None:
    """Sets the nice value of grpc.aio's poller threads (once gRPC has started one).
    Where the OS refuses, logs it and goes on."""
    nice = poller_nice()
    if nice == 0 or not hasattr(os, "setpriority"):
        return
    for thread in threading.enumerate():
        if not thread.name.endswith(_POLLER_TARGET) or thread.native_id is None:
            continue
        try:
            if os.getpriority(os.PRIO_PROCESS, thread.native_id) < nice:
                os.setpriority(os.PRIO_PROCESS, thread.native_id, nice)
        except OSError as exc:
            log.info("could not lower the priority of gRPC's poller thread: %s", exc)
