"""Shared plumbing for Baton services: settings, server bootstrap, errors, stores."""

# First: gRPC reads its settings when it is imported (see _grpc_env).
from . import _grpc_env  # noqa: F401, I001

from . import _access as access
from . import _constants as constants
from ._audit import AuditEntry, AuditInterceptor, AuditSink
from ._audit_remote import RemoteAuditSink
from ._auth import (
    AuthConfig,
    Authenticator,
    Identity,
    ServiceCredentials,
    ensure_secret,
    hash_api_key,
    issue_token,
)
from ._channels import channel_options, insecure_channel
from ._auth_interceptor import AuthInterceptor, auth_interceptor, current_identity
from ._convert import (
    batch_length,
    datetime_to_timestamp,
    dict_to_struct,
    duration_to_seconds,
    seconds_to_duration,
    set_timestamp,
    struct_to_dict,
    timestamp_to_datetime,
    utcnow,
)
from ._db import (
    SQLITE_BUSY_TIMEOUT_MS,
    apply_sqlite_pragmas,
    is_sqlite,
    make_engine,
    migrate,
    run_alembic_env,
)
from ._env import SettingError, int_setting
from ._errors import (
    Aborted,
    AlreadyExists,
    BatonError,
    Cancelled,
    DeadlineExceeded,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    error_for_code,
    from_rpc_error,
    from_status,
    status_code_named,
)
from ._ids import new_etag, new_id
from ._redis import RedisServer, free_port, redact_url, redis_problem, redis_server_binary
from ._schema import ParamsValidator, field_path, schema_problems
from ._server import (
    App,
    GrpcServer,
    ListenError,
    Service,
    bind_problem,
    configure_logging,
    freeze_startup_heap,
    run,
    run_app,
)
from ._settings import Settings

__all__ = [
    "SQLITE_BUSY_TIMEOUT_MS",
    "Aborted",
    "AlreadyExists",
    "App",
    "AuditEntry",
    "AuditInterceptor",
    "AuditSink",
    "AuthConfig",
    "AuthInterceptor",
    "Authenticator",
    "BatonError",
    "Cancelled",
    "DeadlineExceeded",
    "FailedPrecondition",
    "GrpcServer",
    "Identity",
    "Internal",
    "InvalidArgument",
    "ListenError",
    "NotFound",
    "ParamsValidator",
    "PermissionDenied",
    "RedisServer",
    "RemoteAuditSink",
    "ResourceExhausted",
    "Service",
    "ServiceCredentials",
    "SettingError",
    "Settings",
    "Unauthenticated",
    "Unavailable",
    "access",
    "apply_sqlite_pragmas",
    "auth_interceptor",
    "batch_length",
    "bind_problem",
    "channel_options",
    "configure_logging",
    "constants",
    "current_identity",
    "datetime_to_timestamp",
    "dict_to_struct",
    "duration_to_seconds",
    "ensure_secret",
    "error_for_code",
    "field_path",
    "free_port",
    "freeze_startup_heap",
    "from_rpc_error",
    "from_status",
    "hash_api_key",
    "insecure_channel",
    "int_setting",
    "is_sqlite",
    "issue_token",
    "make_engine",
    "migrate",
    "new_etag",
    "new_id",
    "redact_url",
    "redis_problem",
    "redis_server_binary",
    "run",
    "run_alembic_env",
    "run_app",
    "schema_problems",
    "seconds_to_duration",
    "set_timestamp",
    "status_code_named",
    "struct_to_dict",
    "timestamp_to_datetime",
    "utcnow",
]
