import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.rpc import status_pb2 as _status_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Call(_message.Message):
    __slots__ = ("hook", "operation", "params", "execution_id", "session_id", "actor", "roles", "run_id", "step_id", "dry_run", "context", "policy")
    HOOK_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_ID_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    hook: str
    operation: str
    params: _struct_pb2.Struct
    execution_id: str
    session_id: str
    actor: str
    roles: _containers.RepeatedScalarFieldContainer[str]
    run_id: str
    step_id: str
    dry_run: bool
    context: _struct_pb2.Struct
    policy: str
    def __init__(self, hook: _Optional[str] = ..., operation: _Optional[str] = ..., params: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., execution_id: _Optional[str] = ..., session_id: _Optional[str] = ..., actor: _Optional[str] = ..., roles: _Optional[_Iterable[str]] = ..., run_id: _Optional[str] = ..., step_id: _Optional[str] = ..., dry_run: _Optional[bool] = ..., context: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., policy: _Optional[str] = ...) -> None: ...

class BeforeDispatchRequest(_message.Message):
    __slots__ = ("call",)
    CALL_FIELD_NUMBER: _ClassVar[int]
    call: Call
    def __init__(self, call: _Optional[_Union[Call, _Mapping]] = ...) -> None: ...

class BeforeDispatchResponse(_message.Message):
    __slots__ = ("decision", "rejection", "reason", "context")
    class Decision(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        DECISION_UNSPECIFIED: _ClassVar[BeforeDispatchResponse.Decision]
        DECISION_ALLOW: _ClassVar[BeforeDispatchResponse.Decision]
        DECISION_REJECT: _ClassVar[BeforeDispatchResponse.Decision]
    DECISION_UNSPECIFIED: BeforeDispatchResponse.Decision
    DECISION_ALLOW: BeforeDispatchResponse.Decision
    DECISION_REJECT: BeforeDispatchResponse.Decision
    class Rejection(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        REJECTION_UNSPECIFIED: _ClassVar[BeforeDispatchResponse.Rejection]
        REJECTION_PERMISSION_DENIED: _ClassVar[BeforeDispatchResponse.Rejection]
        REJECTION_FAILED_PRECONDITION: _ClassVar[BeforeDispatchResponse.Rejection]
    REJECTION_UNSPECIFIED: BeforeDispatchResponse.Rejection
    REJECTION_PERMISSION_DENIED: BeforeDispatchResponse.Rejection
    REJECTION_FAILED_PRECONDITION: BeforeDispatchResponse.Rejection
    DECISION_FIELD_NUMBER: _ClassVar[int]
    REJECTION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    decision: BeforeDispatchResponse.Decision
    rejection: BeforeDispatchResponse.Rejection
    reason: str
    context: _struct_pb2.Struct
    def __init__(self, decision: _Optional[_Union[BeforeDispatchResponse.Decision, str]] = ..., rejection: _Optional[_Union[BeforeDispatchResponse.Rejection, str]] = ..., reason: _Optional[str] = ..., context: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class AfterDispatchRequest(_message.Message):
    __slots__ = ("call", "result", "error", "duration")
    CALL_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    call: Call
    result: _struct_pb2.Struct
    error: _status_pb2.Status
    duration: _duration_pb2.Duration
    def __init__(self, call: _Optional[_Union[Call, _Mapping]] = ..., result: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ..., duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class AfterDispatchResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
