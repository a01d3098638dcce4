"""Which roles may call which RPC.

Every RPC of every Baton service needs one of a set of roles. Reads (Get,
List, Search, Watch, Validate, Explain) are open to every human role; writes
to the control plane need `operator`; executing things needs `user`; worker
registration needs `worker`; what only services do needs `service`. `admin`
may call everything. An RPC whose verb is not known here falls to
`admin`/`service` only, so a new RPC is closed until someone opens it.
"""

from __future__ import annotations

import functools

ADMIN = "admin"
OPERATOR = "operator"
USER = "user"
VIEWER = "viewer"
WORKER = "worker"
SERVICE = "service"
ROLES = (ADMIN, OPERATOR, USER, VIEWER, WORKER, SERVICE)

INTERNAL = frozenset({ADMIN, SERVICE})
# What only Baton's own services may call: the audit log's records of their changes
# must not be writable (or backdated) by any person, admins included.
SERVICES_ONLY = frozenset({SERVICE})
READERS = frozenset({ADMIN, OPERATOR, USER, VIEWER, SERVICE})
USERS = frozenset({ADMIN, OPERATOR, USER, SERVICE})
OPERATORS = frozenset({ADMIN, OPERATOR, SERVICE})
WORKERS = frozenset({ADMIN, WORKER, SERVICE})

_READ_VERBS = ("Get", "List", "Search", "Watch", "Validate", "Explain")
_WRITE_VERBS = ("Create", "Update", "Delete", "Register", "Reset")

_EXPLICIT: dict[str, frozenset[str]] = {
    "baton.orchestrator.v1.Orchestrator/Dispatch": USERS,
    "baton.orchestrator.v1.Workflows/StartRun": USERS,
    "baton.orchestrator.v1.Workflows/CancelRun": USERS,
    "baton.orchestrator.v1.Workflows/RetryRun": USERS,
    "baton.orchestrator.v1.AuditLog/ListAuditRecords": OPERATORS,
    "baton.orchestrator.v1.AuditLog/WriteAuditRecords": SERVICES_ONLY,
    "baton.registry.v1.MethodRegistry/RegisterMethod": WORKERS,
    "baton.registry.v1.MethodRegistry/Heartbeat": WORKERS,
    "baton.sessions.v1.SessionOrchestrator/CreateSession": USERS,
    "baton.sessions.v1.SessionOrchestrator/FindOrCreateSession": USERS,
    "baton.sessions.v1.SessionOrchestrator/CloseSession": USERS,
    "baton.sessions.v1.SessionOrchestrator/LinkSessionToCasefile": USERS,
    "baton.sessions.v1.SessionOrchestrator/UpdateSessionContext": USERS,
    "baton.sessions.v1.SessionOrchestrator/TrackExecution": INTERNAL,
}

# Who may act on any user's sessions and workflow runs; the other roles only on
# their own (a session whose user_id, a run whose actor, is the caller's subject).
MANAGERS = frozenset({ADMIN, OPERATOR, SERVICE})

# Callable by anyone, authenticated or not.
OPEN_SERVICES = ("grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection",
                 "grpc.reflection.v1.ServerReflection")


@functools.lru_cache(maxsize=1024)
def roles_for(method: str) -> frozenset[str]:
    """Roles of which a caller of `method` ("/pkg.Service/Rpc") needs one."""
    key = method.lstrip("/")
    explicit = _EXPLICIT.get(key)
    if explicit is not None:
        return explicit
    rpc = key.rsplit("/", 1)[-1]
    if rpc.startswith(_READ_VERBS):
        return READERS
    if rpc.startswith(_WRITE_VERBS):
        return OPERATORS
    return INTERNAL


@functools.lru_cache(maxsize=1024)
def is_open(method: str) -> bool:
    """Whether `method` is callable without authentication (health, reflection)."""
    return method.lstrip("/").split("/", 1)[0] in OPEN_SERVICES
