import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Session(_message.Message):
    __slots__ = ("session_id", "user_id", "casefile_id", "status", "labels", "create_time", "last_activity_time", "end_time", "execution_count", "context")
    class Status(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATUS_UNSPECIFIED: _ClassVar[Session.Status]
        STATUS_ACTIVE: _ClassVar[Session.Status]
        STATUS_CLOSED: _ClassVar[Session.Status]
        STATUS_EXPIRED: _ClassVar[Session.Status]
    STATUS_UNSPECIFIED: Session.Status
    STATUS_ACTIVE: Session.Status
    STATUS_CLOSED: Session.Status
    STATUS_EXPIRED: Session.Status
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CASEFILE_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_ACTIVITY_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_COUNT_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    user_id: str
    casefile_id: str
    status: Session.Status
    labels: _containers.ScalarMap[str, str]
    create_time: _timestamp_pb2.Timestamp
    last_activity_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    execution_count: int
    context: SessionContext
    def __init__(self, session_id: _Optional[str] = ..., user_id: _Optional[str] = ..., casefile_id: _Optional[str] = ..., status: _Optional[_Union[Session.Status, str]] = ..., labels: _Optional[_Mapping[str, str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_activity_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., execution_count: _Optional[int] = ..., context: _Optional[_Union[SessionContext, _Mapping]] = ...) -> None: ...

class SessionContext(_message.Message):
    __slots__ = ("values", "etag")
    VALUES_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    values: _struct_pb2.Struct
    etag: str
    def __init__(self, values: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., etag: _Optional[str] = ...) -> None: ...

class Execution(_message.Message):
    __slots__ = ("execution_id", "session_id", "operation", "status", "duration", "error", "run_id", "step_id", "actor", "create_time", "result")
    class Status(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATUS_UNSPECIFIED: _ClassVar[Execution.Status]
        STATUS_SUCCEEDED: _ClassVar[Execution.Status]
        STATUS_FAILED: _ClassVar[Execution.Status]
    STATUS_UNSPECIFIED: Execution.Status
    STATUS_SUCCEEDED: Execution.Status
    STATUS_FAILED: Execution.Status
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_ID_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    execution_id: str
    session_id: str
    operation: str
    status: Execution.Status
    duration: _duration_pb2.Duration
    error: str
    run_id: str
    step_id: str
    actor: str
    create_time: _timestamp_pb2.Timestamp
    result: _struct_pb2.Struct
    def __init__(self, execution_id: _Optional[str] = ..., session_id: _Optional[str] = ..., operation: _Optional[str] = ..., status: _Optional[_Union[Execution.Status, str]] = ..., duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., error: _Optional[str] = ..., run_id: _Optional[str] = ..., step_id: _Optional[str] = ..., actor: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., result: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class SessionEvent(_message.Message):
    __slots__ = ("sequence", "type", "session_id", "data", "create_time")
    class Type(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        TYPE_UNSPECIFIED: _ClassVar[SessionEvent.Type]
        TYPE_CREATED: _ClassVar[SessionEvent.Type]
        TYPE_LINKED: _ClassVar[SessionEvent.Type]
        TYPE_EXECUTION_TRACKED: _ClassVar[SessionEvent.Type]
        TYPE_CONTEXT_CHANGED: _ClassVar[SessionEvent.Type]
        TYPE_CLOSED: _ClassVar[SessionEvent.Type]
        TYPE_EXPIRED: _ClassVar[SessionEvent.Type]
    TYPE_UNSPECIFIED: SessionEvent.Type
    TYPE_CREATED: SessionEvent.Type
    TYPE_LINKED: SessionEvent.Type
    TYPE_EXECUTION_TRACKED: SessionEvent.Type
    TYPE_CONTEXT_CHANGED: SessionEvent.Type
    TYPE_CLOSED: SessionEvent.Type
    TYPE_EXPIRED: SessionEvent.Type
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    type: SessionEvent.Type
    session_id: str
    data: _struct_pb2.Struct
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, sequence: _Optional[int] = ..., type: _Optional[_Union[SessionEvent.Type, str]] = ..., session_id: _Optional[str] = ..., data: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateSessionRequest(_message.Message):
    __slots__ = ("user_id", "casefile_id", "labels", "request_id")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CASEFILE_ID_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    casefile_id: str
    labels: _containers.ScalarMap[str, str]
    request_id: str
    def __init__(self, user_id: _Optional[str] = ..., casefile_id: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., request_id: _Optional[str] = ...) -> None: ...

class CreateSessionResponse(_message.Message):
    __slots__ = ("session",)
    SESSION_FIELD_NUMBER: _ClassVar[int]
    session: Session
    def __init__(self, session: _Optional[_Union[Session, _Mapping]] = ...) -> None: ...

class GetSessionRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class GetSessionResponse(_message.Message):
    __slots__ = ("session",)
    SESSION_FIELD_NUMBER: _ClassVar[int]
    session: Session
    def __init__(self, session: _Optional[_Union[Session, _Mapping]] = ...) -> None: ...

class CloseSessionRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class CloseSessionResponse(_message.Message):
    __slots__ = ("session",)
    SESSION_FIELD_NUMBER: _ClassVar[int]
    session: Session
    def __init__(self, session: _Optional[_Union[Session, _Mapping]] = ...) -> None: ...

class FindOrCreateSessionRequest(_message.Message):
    __slots__ = ("user_id", "casefile_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CASEFILE_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    casefile_id: str
    def __init__(self, user_id: _Optional[str] = ..., casefile_id: _Optional[str] = ...) -> None: ...

class FindOrCreateSessionResponse(_message.Message):
    __slots__ = ("session", "created")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    session: Session
    created: bool
    def __init__(self, session: _Optional[_Union[Session, _Mapping]] = ..., created: _Optional[bool] = ...) -> None: ...

class LinkSessionToCasefileRequest(_message.Message):
    __slots__ = ("session_id", "casefile_id")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    CASEFILE_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    casefile_id: str
    def __init__(self, session_id: _Optional[str] = ..., casefile_id: _Optional[str] = ...) -> None: ...

class LinkSessionToCasefileResponse(_message.Message):
    __slots__ = ("session",)
    SESSION_FIELD_NUMBER: _ClassVar[int]
    session: Session
    def __init__(self, session: _Optional[_Union[Session, _Mapping]] = ...) -> None: ...

class TrackExecutionRequest(_message.Message):
    __slots__ = ("session_id", "execution")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    execution: Execution
    def __init__(self, session_id: _Optional[str] = ..., execution: _Optional[_Union[Execution, _Mapping]] = ...) -> None: ...

class TrackExecutionResponse(_message.Message):
    __slots__ = ("execution",)
    EXECUTION_FIELD_NUMBER: _ClassVar[int]
    execution: Execution
    def __init__(self, execution: _Optional[_Union[Execution, _Mapping]] = ...) -> None: ...

class ListSessionExecutionsRequest(_message.Message):
    __slots__ = ("session_id", "page_size", "page_token")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    page_size: int
    page_token: str
    def __init__(self, session_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListSessionExecutionsResponse(_message.Message):
    __slots__ = ("executions", "next_page_token")
    EXECUTIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    executions: _containers.RepeatedCompositeFieldContainer[Execution]
    next_page_token: str
    def __init__(self, executions: _Optional[_Iterable[_Union[Execution, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListSessionsRequest(_message.Message):
    __slots__ = ("user_id", "casefile_id", "status", "page_size", "page_token")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CASEFILE_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    casefile_id: str
    status: Session.Status
    page_size: int
    page_token: str
    def __init__(self, user_id: _Optional[str] = ..., casefile_id: _Optional[str] = ..., status: _Optional[_Union[Session.Status, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListSessionsResponse(_message.Message):
    __slots__ = ("sessions", "next_page_token")
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    sessions: _containers.RepeatedCompositeFieldContainer[Session]
    next_page_token: str
    def __init__(self, sessions: _Optional[_Iterable[_Union[Session, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateSessionContextRequest(_message.Message):
    __slots__ = ("session_id", "values", "update_mask", "etag", "keys")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    values: _struct_pb2.Struct
    update_mask: _field_mask_pb2.FieldMask
    etag: str
    keys: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, session_id: _Optional[str] = ..., values: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., etag: _Optional[str] = ..., keys: _Optional[_Iterable[str]] = ...) -> None: ...

class UpdateSessionContextResponse(_message.Message):
    __slots__ = ("context",)
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    context: SessionContext
    def __init__(self, context: _Optional[_Union[SessionContext, _Mapping]] = ...) -> None: ...

class WatchSessionRequest(_message.Message):
    __slots__ = ("session_id", "after_sequence")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    after_sequence: int
    def __init__(self, session_id: _Optional[str] = ..., after_sequence: _Optional[int] = ...) -> None: ...

class WatchSessionResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: SessionEvent
    def __init__(self, event: _Optional[_Union[SessionEvent, _Mapping]] = ...) -> None: ...
