"""Children that do not outlive the process that started them (Linux).

`baton up` starts its services in sessions of their own (so that a Ctrl-C in
its terminal reaches it alone); if it is killed outright they would go on
running, holding the ports and the data directory. A child started with
`tied_to_this_process()` as its `preexec_fn` gets SIGTERM when its parent dies:
the kernel's parent-death signal, set between fork and exec.

The signal follows the *thread* that forked the child: start tied children
from a thread that lives as long as the process (the main thread).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1
# Looked up before any fork: the function run in the child only calls it.
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None


def tied_to_this_process() -> Callable[[], None] | None:
    """A `preexec_fn` that has the child sent SIGTERM once this process is gone;
    None where the platform has no such signal."""
    if _prctl is None:
        return None
    parent = os.getpid()

    def tie() -> None:
        _prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:  # it died before the tie was made
            os.kill(os.getpid(), signal.SIGTERM)

    return tie
