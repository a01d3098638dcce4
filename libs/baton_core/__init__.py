"""Shared plumbing for Baton services: settings, server bootstrap, errors, stores."""

# First: gRPC reads its settings when it is imported (see _grpc_env).
from . import _grpc_env  # noqa: F401, I001

import importlib
from typing import TYPE_CHECKING, Any

from . import _access as access
from . import _constants as constants
from ._audit import AuditEntry, AuditInterceptor, AuditSink
from ._audit_remote import RemoteAuditSink
from ._auth import (
    AuthConfig,
    Authenticator,
    Identity,
    ServiceCredentials,
    api_keys_from,
    credential_header,
    ensure_secret,
    hash_api_key,
    issue_token,
    load_api_keys,
)
from ._channels import channel_options, insecure_channel
from ._auth_interceptor import AuthInterceptor, auth_interceptor, current_identity
from ._convert import (
    batch_length,
    check_enum,
    datetime_to_timestamp,
    dict_to_struct,
    duration_problems,
    not_json_numbers,
    require_json_numbers,
    duration_to_seconds,
    field_path,
    seconds_to_duration,
    set_timestamp,
    struct_to_dict,
    timestamp_problems,
    timestamp_to_datetime,
    utcnow,
)
from ._env import SettingError, float_setting, int_setting, parse_yaml, yaml_setting_file
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
    bounded,
    error_for_code,
    from_rpc_error,
    required,
    from_status,
    status_code_named,
    mask_paths,
)
from ._ids import new_etag, new_id
from ._outage import Outage
from ._paging import decode_page_token, encode_page_token, invalid_page_token, page_size
from ._redis import RedisServer, free_port, redact_url, redis_problem, redis_server_binary
from ._uncancelled import finish_before_cancel
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
from ._stop_watchdog import service_stop_budget

# Imported when first used: SQLAlchemy and the JSON Schema libraries take ~0.4 s
# to import, which the CLI and the SDK's clients never need.
_LAZY = {
    "._db": ("SQLITE_BUSY_TIMEOUT_MS", "apply_sqlite_pragmas", "insert_ignoring_conflicts",
             "is_sqlite", "make_engine", "migrate", "run_alembic_env"),
    "._store_id": ("create_store_meta", "key_prefix", "read_store_id", "store_meta_table"),
    "._schema": ("ParamsValidator",),
    "._schema_checks": ("json_pointer", "schema_problems"),
}
_LAZY_FROM = {name: module for module, names in _LAZY.items() for name in names}

if TYPE_CHECKING:
    from ._db import (
        SQLITE_BUSY_TIMEOUT_MS,
        apply_sqlite_pragmas,
        insert_ignoring_conflicts,
        is_sqlite,
        make_engine,
        migrate,
        run_alembic_env,
    )
    from ._schema import ParamsValidator
    from ._schema_checks import json_pointer, schema_problems
    from ._store_id import create_store_meta, key_prefix, read_store_id, store_meta_table


def __getattr__(name: str) -> Any:
    module = _LAZY_FROM.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


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
    "Outage",
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
    "api_keys_from",
    "apply_sqlite_pragmas",
    "auth_interceptor",
    "batch_length",
    "bind_problem",
    "bounded",
    "channel_options",
    "check_enum",
    "configure_logging",
    "constants",
    "create_store_meta",
    "credential_header",
    "current_identity",
    "datetime_to_timestamp",
    "decode_page_token",
    "dict_to_struct",
    "duration_problems",
    "duration_to_seconds",
    "encode_page_token",
    "ensure_secret",
    "error_for_code",
    "field_path",
    "finish_before_cancel",
    "float_setting",
    "free_port",
    "freeze_startup_heap",
    "from_rpc_error",
    "from_status",
    "hash_api_key",
    "insecure_channel",
    "insert_ignoring_conflicts",
    "int_setting",
    "invalid_page_token",
    "is_sqlite",
    "issue_token",
    "json_pointer",
    "key_prefix",
    "load_api_keys",
    "make_engine",
    "mask_paths",
    "migrate",
    "new_etag",
    "new_id",
    "not_json_numbers",
    "page_size",
    "parse_yaml",
    "read_store_id",
    "redact_url",
    "redis_problem",
    "redis_server_binary",
    "require_json_numbers",
    "required",
    "run",
    "run_alembic_env",
    "run_app",
    "schema_problems",
    "seconds_to_duration",
    "service_stop_budget",
    "set_timestamp",
    "status_code_named",
    "store_meta_table",
    "struct_to_dict",
    "timestamp_problems",
    "timestamp_to_datetime",
    "utcnow",
    "yaml_setting_file",
]
