"""The baton command line.

Importing it sets gRPC up first (baton_core), before anything loads gRPC. A
Ctrl-C during that import (most of the `baton` script's first second) ends the
process as an uncaught Ctrl-C would, without a traceback (see `_entry`).
"""

try:
    import baton_core as _baton_core  # noqa: F401 - sets gRPC up before gRPC loads
except KeyboardInterrupt:
    from ._entry import end_interrupted

    end_interrupted()
