"""Environment variables and defaults of the orchestrator's control plane (its Redis
keys are in `_keys.py`)."""

# Environment.
ENV_POLICIES_FILE = "BATON_POLICIES_FILE"
ENV_IDEMPOTENCY_WINDOW = "BATON_IDEMPOTENCY_WINDOW_SECONDS"
ENV_CONTROL_REFRESH = "BATON_CONTROL_REFRESH_SECONDS"

DEFAULT_IDEMPOTENCY_WINDOW = 24 * 3600.0
DEFAULT_CONTROL_REFRESH = 30.0

# SQL.
CONTROL_VERSION_TABLE = "alembic_version_control"
