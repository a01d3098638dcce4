import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CircuitBreakerConfig(_message.Message):
    __slots__ = ("failure_threshold", "open_timeout", "half_open_max_calls")
    FAILURE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    OPEN_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    HALF_OPEN_MAX_CALLS_FIELD_NUMBER: _ClassVar[int]
    failure_threshold: int
    open_timeout: _duration_pb2.Duration
    half_open_max_calls: int
    def __init__(self, failure_threshold: _Optional[int] = ..., open_timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., half_open_max_calls: _Optional[int] = ...) -> None: ...

class CircuitBreaker(_message.Message):
    __slots__ = ("endpoint", "state", "consecutive_failures", "open_time", "retry_time", "config", "config_override", "half_open_calls", "half_open_successes")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[CircuitBreaker.State]
        STATE_CLOSED: _ClassVar[CircuitBreaker.State]
        STATE_OPEN: _ClassVar[CircuitBreaker.State]
        STATE_HALF_OPEN: _ClassVar[CircuitBreaker.State]
    STATE_UNSPECIFIED: CircuitBreaker.State
    STATE_CLOSED: CircuitBreaker.State
    STATE_OPEN: CircuitBreaker.State
    STATE_HALF_OPEN: CircuitBreaker.State
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CONSECUTIVE_FAILURES_FIELD_NUMBER: _ClassVar[int]
    OPEN_TIME_FIELD_NUMBER: _ClassVar[int]
    RETRY_TIME_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    CONFIG_OVERRIDE_FIELD_NUMBER: _ClassVar[int]
    HALF_OPEN_CALLS_FIELD_NUMBER: _ClassVar[int]
    HALF_OPEN_SUCCESSES_FIELD_NUMBER: _ClassVar[int]
    endpoint: str
    state: CircuitBreaker.State
    consecutive_failures: int
    open_time: _timestamp_pb2.Timestamp
    retry_time: _timestamp_pb2.Timestamp
    config: CircuitBreakerConfig
    config_override: bool
    half_open_calls: int
    half_open_successes: int
    def __init__(self, endpoint: _Optional[str] = ..., state: _Optional[_Union[CircuitBreaker.State, str]] = ..., consecutive_failures: _Optional[int] = ..., open_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., retry_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., config: _Optional[_Union[CircuitBreakerConfig, _Mapping]] = ..., config_override: _Optional[bool] = ..., half_open_calls: _Optional[int] = ..., half_open_successes: _Optional[int] = ...) -> None: ...

class ListCircuitBreakersRequest(_message.Message):
    __slots__ = ("state",)
    STATE_FIELD_NUMBER: _ClassVar[int]
    state: CircuitBreaker.State
    def __init__(self, state: _Optional[_Union[CircuitBreaker.State, str]] = ...) -> None: ...

class ListCircuitBreakersResponse(_message.Message):
    __slots__ = ("circuit_breakers",)
    CIRCUIT_BREAKERS_FIELD_NUMBER: _ClassVar[int]
    circuit_breakers: _containers.RepeatedCompositeFieldContainer[CircuitBreaker]
    def __init__(self, circuit_breakers: _Optional[_Iterable[_Union[CircuitBreaker, _Mapping]]] = ...) -> None: ...

class GetCircuitBreakerRequest(_message.Message):
    __slots__ = ("endpoint",)
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    endpoint: str
    def __init__(self, endpoint: _Optional[str] = ...) -> None: ...

class GetCircuitBreakerResponse(_message.Message):
    __slots__ = ("circuit_breaker",)
    CIRCUIT_BREAKER_FIELD_NUMBER: _ClassVar[int]
    circuit_breaker: CircuitBreaker
    def __init__(self, circuit_breaker: _Optional[_Union[CircuitBreaker, _Mapping]] = ...) -> None: ...

class UpdateCircuitBreakerConfigRequest(_message.Message):
    __slots__ = ("endpoint", "config", "update_mask")
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    endpoint: str
    config: CircuitBreakerConfig
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, endpoint: _Optional[str] = ..., config: _Optional[_Union[CircuitBreakerConfig, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateCircuitBreakerConfigResponse(_message.Message):
    __slots__ = ("circuit_breaker",)
    CIRCUIT_BREAKER_FIELD_NUMBER: _ClassVar[int]
    circuit_breaker: CircuitBreaker
    def __init__(self, circuit_breaker: _Optional[_Union[CircuitBreaker, _Mapping]] = ...) -> None: ...

class ResetCircuitBreakerRequest(_message.Message):
    __slots__ = ("endpoint", "clear_config")
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    CLEAR_CONFIG_FIELD_NUMBER: _ClassVar[int]
    endpoint: str
    clear_config: bool
    def __init__(self, endpoint: _Optional[str] = ..., clear_config: _Optional[bool] = ...) -> None: ...

class ResetCircuitBreakerResponse(_message.Message):
    __slots__ = ("circuit_breaker",)
    CIRCUIT_BREAKER_FIELD_NUMBER: _ClassVar[int]
    circuit_breaker: CircuitBreaker
    def __init__(self, circuit_breaker: _Optional[_Union[CircuitBreaker, _Mapping]] = ...) -> None: ...
