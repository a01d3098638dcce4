"""Alembic environment of the sessions service: the shared online runner."""

from baton_core import run_alembic_env

run_alembic_env()
