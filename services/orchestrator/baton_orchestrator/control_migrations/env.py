from baton_core import run_alembic_env

run_alembic_env()
