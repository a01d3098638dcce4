"""Children that do not outlive the process that started them (Linux).

`baton up` starts its services in sessions of their own (so that a Ctrl-C in
its terminal reaches it alone); if it is killed outright they would go on
running, holding the ports and the data directory. A child started with
`tied_args(args)` gets SIGTERM when its parent dies: the kernel's parent-death
signal, set by a small exec wrapper before the real program starts.

The signal follows the *thread* that forked the child: start tied children
from a thread that lives as long as the process (the main thread).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

# Run by a fresh interpreter (-I -S: no site, nothing imported but ctypes): ties
# itself to the process named by argv[1], then becomes the real child (argv[2:])
# with execvp, which keeps the parent-death signal. A `preexec_fn` could do the
# same between fork and exec, but Python code there may deadlock when the parent
# has other threads (the docs warn of it; a test platform started from a worker
# thread hung that way).
_TIE = (
    "import ctypes,os,signal,sys\n"
    "ctypes.CDLL(None,use_errno=True).prctl(1,int(signal.SIGTERM),0,0,0)\n"
    "if os.getppid()!=int(sys.argv[1]):os._exit(143)\n"
    "os.execvp(sys.argv[2],sys.argv[2:])\n"
)


def tied_args(args: Sequence[str]) -> list[str]:
    """`args` run so that the child gets SIGTERM once this process is gone (Linux);
    `args` unchanged elsewhere."""
    if not sys.platform.startswith("linux"):
        return list(args)
    return [sys.executable, "-I", "-S", "-c", _TIE, str(os.getpid()), *args]
