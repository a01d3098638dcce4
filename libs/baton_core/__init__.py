"""Shared plumbing for Baton services: settings, server bootstrap, errors, stores."""

from . import _constants as constants
from ._convert import (
    datetime_to_timestamp,
    dict_to_struct,
    duration_to_seconds,
    seconds_to_duration,
    struct_to_dict,
    timestamp_to_datetime,
    utcnow,
)
from ._db import is_sqlite, make_engine, migrate, run_alembic_env
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
    status_code_named,
)
from ._ids import new_id
from ._redis import RedisServer, free_port, redis_server_binary
from ._schema import ParamsValidator, field_path, schema_problems
from ._server import App, GrpcServer, Service, configure_logging, run, run_app
from ._settings import Settings

__all__ = [
    "Aborted",
    "AlreadyExists",
    "App",
    "BatonError",
    "Cancelled",
    "DeadlineExceeded",
    "FailedPrecondition",
    "GrpcServer",
    "Internal",
    "InvalidArgument",
    "NotFound",
    "ParamsValidator",
    "PermissionDenied",
    "RedisServer",
    "ResourceExhausted",
    "Service",
    "Settings",
    "Unauthenticated",
    "Unavailable",
    "configure_logging",
    "constants",
    "datetime_to_timestamp",
    "dict_to_struct",
    "duration_to_seconds",
    "error_for_code",
    "field_path",
    "free_port",
    "from_rpc_error",
    "is_sqlite",
    "make_engine",
    "migrate",
    "new_id",
    "redis_server_binary",
    "run",
    "run_alembic_env",
    "run_app",
    "schema_problems",
    "seconds_to_duration",
    "status_code_named",
    "struct_to_dict",
    "timestamp_to_datetime",
    "utcnow",
]
