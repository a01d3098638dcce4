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
        # The package's __init__ imports baton_core first (it sets gRPC up before
        # gRPC loads) and ends a Ctrl-C during that import the same way.
        from baton_cli.main import main as run
    except KeyboardInterrupt:
        end_interrupted()
    run()


def end_interrupted() -> NoReturn:
    # As Python ends on an uncaught KeyboardInterrupt, only without the traceback:
    # killed by SIGINT, which a shell reports as 130 and which stops a script
    # running `baton` too (after a plain exit status of 130 it would carry on).
    if sys.platform != "win32":
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    raise SystemExit(130)
