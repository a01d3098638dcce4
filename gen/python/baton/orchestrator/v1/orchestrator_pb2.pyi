import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Directives(_message.Message):
    __slots__ = ("skip_hooks", "timeout", "dry_run", "idempotency_key")
    SKIP_HOOKS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    skip_hooks: _containers.RepeatedScalarFieldContainer[str]
    timeout: _duration_pb2.Duration
    dry_run: bool
    idempotency_key: str
    def __init__(self, skip_hooks: _Optional[_Iterable[str]] = ..., timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., dry_run: _Optional[bool] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class DispatchRequest(_message.Message):
    __slots__ = ("operation", "params", "session_id", "directives")
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    DIRECTIVES_FIELD_NUMBER: _ClassVar[int]
    operation: str
    params: _struct_pb2.Struct
    session_id: str
    directives: Directives
    def __init__(self, operation: _Optional[str] = ..., params: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., session_id: _Optional[str] = ..., directives: _Optional[_Union[Directives, _Mapping]] = ...) -> None: ...

class DispatchMetadata(_message.Message):
    __slots__ = ("execution_id", "total_duration", "worker_duration", "attempts", "worker_address", "worker_id", "method_version", "hooks_run", "policy", "dry_run", "replayed")
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    TOTAL_DURATION_FIELD_NUMBER: _ClassVar[int]
    WORKER_DURATION_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    WORKER_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    METHOD_VERSION_FIELD_NUMBER: _ClassVar[int]
    HOOKS_RUN_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    execution_id: str
    total_duration: _duration_pb2.Duration
    worker_duration: _duration_pb2.Duration
    attempts: int
    worker_address: str
    worker_id: str
    method_version: str
    hooks_run: _containers.RepeatedScalarFieldContainer[str]
    policy: str
    dry_run: bool
    replayed: bool
    def __init__(self, execution_id: _Optional[str] = ..., total_duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., worker_duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., attempts: _Optional[int] = ..., worker_address: _Optional[str] = ..., worker_id: _Optional[str] = ..., method_version: _Optional[str] = ..., hooks_run: _Optional[_Iterable[str]] = ..., policy: _Optional[str] = ..., dry_run: _Optional[bool] = ..., replayed: _Optional[bool] = ...) -> None: ...

class DispatchResponse(_message.Message):
    __slots__ = ("result", "metadata")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    result: _struct_pb2.Struct
    metadata: DispatchMetadata
    def __init__(self, result: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., metadata: _Optional[_Union[DispatchMetadata, _Mapping]] = ...) -> None: ...
