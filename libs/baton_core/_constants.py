"""Ports, service names and environment variable names, in one place."""

REGISTRY_PORT = 50051
ORCHESTRATOR_PORT = 50052
SESSIONS_PORT = 50053
WORKER_PORT = 50060
GATEWAY_PORT = 8080

REGISTRY_SERVICE = "baton.registry.v1.MethodRegistry"
PROVIDER_SERVICE = "baton.provider.v1.MethodProvider"
ORCHESTRATOR_SERVICE = "baton.orchestrator.v1.Orchestrator"
HOOK_MANAGER_SERVICE = "baton.orchestrator.v1.HookManager"
POLICY_ENGINE_SERVICE = "baton.orchestrator.v1.PolicyEngine"
SESSIONS_SERVICE = "baton.sessions.v1.SessionOrchestrator"
AUDIT_LOG_SERVICE = "baton.orchestrator.v1.AuditLog"
CIRCUIT_BREAKERS_SERVICE = "baton.orchestrator.v1.CircuitBreakers"
WORKFLOWS_SERVICE = "baton.orchestrator.v1.Workflows"

ERROR_DOMAIN = "baton.dev"

# Environment variables (documented in the README's configuration table).
ENV_DATA_DIR = "BATON_DATA_DIR"
DEFAULT_DATA_DIR = "./.baton"
ENV_HOST = "BATON_HOST"
ENV_REGISTRY_ADDR = "BATON_REGISTRY_ADDR"
ENV_ORCHESTRATOR_ADDR = "BATON_ORCHESTRATOR_ADDR"
ENV_SESSIONS_ADDR = "BATON_SESSIONS_ADDR"
ENV_LISTEN = "BATON_LISTEN"
ENV_DATABASE_URL = "BATON_DATABASE_URL"
ENV_DB_POOL_SIZE = "BATON_DB_POOL_SIZE"
ENV_DB_MAX_OVERFLOW = "BATON_DB_MAX_OVERFLOW"
ENV_SQLITE_POOL_SIZE = "BATON_SQLITE_POOL_SIZE"
ENV_SQLITE_CACHE_KIB = "BATON_SQLITE_CACHE_KIB"
ENV_REDIS_URL = "REDIS_URL"
ENV_LOG_LEVEL = "BATON_LOG_LEVEL"
ENV_LEASE_TTL = "BATON_LEASE_TTL_SECONDS"
ENV_SESSION_TTL = "BATON_SESSION_TTL_SECONDS"
ENV_GRACE = "BATON_SHUTDOWN_GRACE_SECONDS"
DEFAULT_GRACE = 5.0
# Seconds a stopping server reports NOT_SERVING before it stops taking calls.
HEALTH_DRAIN = 0.5
# How long the orchestrator's graceful stop lets the workflow steps in flight
# finish after the server's grace (read by the workflow engine, and by `baton up`
# to know how long a stop may take).
ENV_WORKFLOW_DRAIN = "BATON_WORKFLOW_DRAIN_SECONDS"
DEFAULT_WORKFLOW_DRAIN = 3.0

# Authentication (see `_auth.py`).
ENV_AUTH = "BATON_AUTH"  # on (default) | off
ENV_JWT_SECRET = "BATON_JWT_SECRET"
ENV_JWT_SECRET_FILE = "BATON_JWT_SECRET_FILE"
ENV_JWT_PUBLIC_KEY_FILE = "BATON_JWT_PUBLIC_KEY_FILE"
ENV_JWT_PRIVATE_KEY_FILE = "BATON_JWT_PRIVATE_KEY_FILE"
ENV_JWT_ISSUER = "BATON_JWT_ISSUER"
ENV_JWT_AUDIENCE = "BATON_JWT_AUDIENCE"
ENV_API_KEYS_FILE = "BATON_API_KEYS_FILE"
ENV_SERVICE_TOKEN = "BATON_SERVICE_TOKEN"
ENV_SERVICE_API_KEY = "BATON_SERVICE_API_KEY"
ENV_TOKEN = "BATON_TOKEN"
# The secret `baton up` generates under the data directory when none is set.
JWT_SECRET_FILE_NAME = "jwt-secret"
DEFAULT_JWT_ISSUER = "baton"
DEFAULT_JWT_AUDIENCE = "baton"

# Port of the Prometheus /metrics endpoint of a service; unset: none.
ENV_METRICS_PORT = "BATON_METRICS_PORT"

# Call metadata.
AUTHORIZATION_HEADER = "authorization"
API_KEY_HEADER = "x-api-key"
API_KEY_PREFIX = "bk_"  # what `baton apikey create` keys start with
# The actor a `service` caller acts for, and that actor's roles (comma-separated).
ACTOR_HEADER = "x-baton-actor"
ROLES_HEADER = "x-baton-roles"
ENV_WORKER_LISTEN = "BATON_WORKER_LISTEN"
ENV_WORKER_ADVERTISE_HOST = "BATON_WORKER_ADVERTISE_HOST"
ENV_WORKER_ID = "BATON_WORKER_ID"
# An orchestrator replica's name in run leases (`baton up` names its own).
ENV_REPLICA_ID = "BATON_REPLICA_ID"

# The largest result a session's execution history keeps, as compact JSON.
MAX_EXECUTION_RESULT_BYTES = 16 * 1024
# Method names one Heartbeat may renew (the SDK's worker sends more in several).
MAX_HEARTBEAT_METHODS = 1000
