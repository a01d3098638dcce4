"""The `baton` console script, kept light so that it can catch Ctrl-C while the
command line loads (about a second: gRPC, typer, the services' modules) and end
quietly instead of printing a KeyboardInterrupt traceback."""

from __future__ import annotations

import os
import signal
import sys
from typing import NoReturn


def main() -> None:
    """Loads the command line and runs it."""
    try:
        import baton_core  # noqa: F401 - first: it sets gRPC up before gRPC loads
        from baton_cli.main import main as run
    except KeyboardInterrupt:
        _end_interrupted()
    run()


def _end_interrupted() -> NoReturn:
    # As Python ends on an uncaught KeyboardInterrupt, only without the traceback:
    # killed by SIGINT, which a shell reports as 130 and which stops a script
    # running `baton` too (after a plain exit status of 130 it would carry on).
    if sys.platform != "win32":
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    raise SystemExit(130)
