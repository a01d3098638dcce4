"""The baton command line."""

import baton_core as _baton_core  # noqa: F401 - sets gRPC up before gRPC loads
