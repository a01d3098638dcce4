"""Tunables of the registry, in one place."""

SERVICE_NAME = "registry"

# Alembic keeps this service's schema version in its own table, so the three
# services can share one database.
VERSION_TABLE = "alembic_version_registry"

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
DEFAULT_SEARCH_SIZE = 20

# How often the sweeper looks for lapsed leases.
SWEEP_INTERVAL = 0.5
# How often a watch polls the outbox for commits made by other replicas.
WATCH_POLL_INTERVAL = 1.0
# Outbox rows a watch reads per query.
WATCH_BATCH = 500
# Outbox rows older than this are pruned; a watch further behind misses them.
EVENT_RETENTION = 3600.0
# Endpoints UNAVAILABLE for longer than this are deleted.
ENDPOINT_RETENTION = 3600.0
# How often old events and endpoints are pruned.
PRUNE_INTERVAL = 60.0
# What one page of methods may carry: a reply stays under what a client takes.
PAGE_BYTES = 3 * 1024 * 1024  # (a gRPC client takes 4 MiB by default)
