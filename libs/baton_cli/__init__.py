"""The baton command line.

Nothing is imported here: the `baton` script (`_entry`) catches Ctrl-C only once
this package is loaded. `_entry` imports baton_core first, which sets gRPC up
before gRPC loads.
"""
