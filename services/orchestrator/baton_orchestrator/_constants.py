"""Redis keys, environment variables and defaults of the orchestrator's control plane."""

# Redis. Keys that one script touches together share a {hash tag}, so they
# live in one Redis Cluster slot.
RATE_ACTOR_KEY = "baton:rl:{{{operation}}}:actor:{actor}"
RATE_OPERATION_KEY = "baton:rl:{{{operation}}}:op"
CONCURRENCY_KEY = "baton:rl:{{{operation}}}:inflight"
BREAKER_KEY = "baton:{{cb}}:{endpoint}"
BREAKER_INDEX_KEY = "baton:{cb}:endpoints"
IDEMPOTENCY_KEY = "baton:idem:{actor}:{key}"
CONTROL_CHANNEL = "baton:control:changed"

# Environment.
ENV_POLICIES_FILE = "BATON_POLICIES_FILE"
ENV_IDEMPOTENCY_WINDOW = "BATON_IDEMPOTENCY_WINDOW_SECONDS"
ENV_CONTROL_REFRESH = "BATON_CONTROL_REFRESH_SECONDS"

DEFAULT_IDEMPOTENCY_WINDOW = 24 * 3600.0
DEFAULT_CONTROL_REFRESH = 30.0

# SQL.
CONTROL_VERSION_TABLE = "alembic_version_control"
