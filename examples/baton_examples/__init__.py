"""Example Baton workers."""
