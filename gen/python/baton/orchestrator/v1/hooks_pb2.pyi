import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Hook(_message.Message):
    __slots__ = ("name", "stage", "order", "builtin", "address", "failure_mode", "timeout", "skippable", "description", "create_time", "update_time")
    class Stage(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STAGE_UNSPECIFIED: _ClassVar[Hook.Stage]
        STAGE_PRE: _ClassVar[Hook.Stage]
        STAGE_POST: _ClassVar[Hook.Stage]
    STAGE_UNSPECIFIED: Hook.Stage
    STAGE_PRE: Hook.Stage
    STAGE_POST: Hook.Stage
    class FailureMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        FAILURE_MODE_UNSPECIFIED: _ClassVar[Hook.FailureMode]
        FAILURE_MODE_FAIL_OPEN: _ClassVar[Hook.FailureMode]
        FAILURE_MODE_FAIL_CLOSED: _ClassVar[Hook.FailureMode]
    FAILURE_MODE_UNSPECIFIED: Hook.FailureMode
    FAILURE_MODE_FAIL_OPEN: Hook.FailureMode
    FAILURE_MODE_FAIL_CLOSED: Hook.FailureMode
    NAME_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    BUILTIN_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    FAILURE_MODE_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    SKIPPABLE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    stage: Hook.Stage
    order: int
    builtin: bool
    address: str
    failure_mode: Hook.FailureMode
    timeout: _duration_pb2.Duration
    skippable: bool
    description: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., stage: _Optional[_Union[Hook.Stage, str]] = ..., order: _Optional[int] = ..., builtin: _Optional[bool] = ..., address: _Optional[str] = ..., failure_mode: _Optional[_Union[Hook.FailureMode, str]] = ..., timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., skippable: _Optional[bool] = ..., description: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListHooksRequest(_message.Message):
    __slots__ = ("stage",)
    STAGE_FIELD_NUMBER: _ClassVar[int]
    stage: Hook.Stage
    def __init__(self, stage: _Optional[_Union[Hook.Stage, str]] = ...) -> None: ...

class ListHooksResponse(_message.Message):
    __slots__ = ("hooks",)
    HOOKS_FIELD_NUMBER: _ClassVar[int]
    hooks: _containers.RepeatedCompositeFieldContainer[Hook]
    def __init__(self, hooks: _Optional[_Iterable[_Union[Hook, _Mapping]]] = ...) -> None: ...

class GetHookRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetHookResponse(_message.Message):
    __slots__ = ("hook",)
    HOOK_FIELD_NUMBER: _ClassVar[int]
    hook: Hook
    def __init__(self, hook: _Optional[_Union[Hook, _Mapping]] = ...) -> None: ...

class RegisterHookRequest(_message.Message):
    __slots__ = ("hook",)
    HOOK_FIELD_NUMBER: _ClassVar[int]
    hook: Hook
    def __init__(self, hook: _Optional[_Union[Hook, _Mapping]] = ...) -> None: ...

class RegisterHookResponse(_message.Message):
    __slots__ = ("hook", "created")
    HOOK_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    hook: Hook
    created: bool
    def __init__(self, hook: _Optional[_Union[Hook, _Mapping]] = ..., created: _Optional[bool] = ...) -> None: ...

class DeleteHookRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteHookResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
