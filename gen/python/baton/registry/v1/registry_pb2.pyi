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

class RetryPolicy(_message.Message):
    __slots__ = ("strategy", "max_attempts", "initial_delay", "max_delay", "multiplier", "retryable_codes")
    class Strategy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STRATEGY_UNSPECIFIED: _ClassVar[RetryPolicy.Strategy]
        STRATEGY_NONE: _ClassVar[RetryPolicy.Strategy]
        STRATEGY_FIXED: _ClassVar[RetryPolicy.Strategy]
        STRATEGY_LINEAR: _ClassVar[RetryPolicy.Strategy]
        STRATEGY_EXPONENTIAL: _ClassVar[RetryPolicy.Strategy]
    STRATEGY_UNSPECIFIED: RetryPolicy.Strategy
    STRATEGY_NONE: RetryPolicy.Strategy
    STRATEGY_FIXED: RetryPolicy.Strategy
    STRATEGY_LINEAR: RetryPolicy.Strategy
    STRATEGY_EXPONENTIAL: RetryPolicy.Strategy
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    INITIAL_DELAY_FIELD_NUMBER: _ClassVar[int]
    MAX_DELAY_FIELD_NUMBER: _ClassVar[int]
    MULTIPLIER_FIELD_NUMBER: _ClassVar[int]
    RETRYABLE_CODES_FIELD_NUMBER: _ClassVar[int]
    strategy: RetryPolicy.Strategy
    max_attempts: int
    initial_delay: _duration_pb2.Duration
    max_delay: _duration_pb2.Duration
    multiplier: float
    retryable_codes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, strategy: _Optional[_Union[RetryPolicy.Strategy, str]] = ..., max_attempts: _Optional[int] = ..., initial_delay: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., max_delay: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., multiplier: _Optional[float] = ..., retryable_codes: _Optional[_Iterable[str]] = ...) -> None: ...

class Endpoint(_message.Message):
    __slots__ = ("worker_id", "address", "state", "lease_expire_time")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[Endpoint.State]
        STATE_AVAILABLE: _ClassVar[Endpoint.State]
        STATE_UNAVAILABLE: _ClassVar[Endpoint.State]
    STATE_UNSPECIFIED: Endpoint.State
    STATE_AVAILABLE: Endpoint.State
    STATE_UNAVAILABLE: Endpoint.State
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    LEASE_EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    address: str
    state: Endpoint.State
    lease_expire_time: _timestamp_pb2.Timestamp
    def __init__(self, worker_id: _Optional[str] = ..., address: _Optional[str] = ..., state: _Optional[_Union[Endpoint.State, str]] = ..., lease_expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Method(_message.Message):
    __slots__ = ("name", "version", "description", "domain", "tags", "input_schema", "output_schema", "default_timeout", "retry_policy", "idempotent", "endpoints", "create_time", "update_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    INPUT_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    RETRY_POLICY_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENT_FIELD_NUMBER: _ClassVar[int]
    ENDPOINTS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    description: str
    domain: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    input_schema: _struct_pb2.Struct
    output_schema: _struct_pb2.Struct
    default_timeout: _duration_pb2.Duration
    retry_policy: RetryPolicy
    idempotent: bool
    endpoints: _containers.RepeatedCompositeFieldContainer[Endpoint]
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., description: _Optional[str] = ..., domain: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., input_schema: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., output_schema: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., default_timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., retry_policy: _Optional[_Union[RetryPolicy, _Mapping]] = ..., idempotent: _Optional[bool] = ..., endpoints: _Optional[_Iterable[_Union[Endpoint, _Mapping]]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Tool(_message.Message):
    __slots__ = ("name", "description", "method", "parameters_schema", "parameter_mapping", "create_time")
    class ParameterMappingEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    PARAMETER_MAPPING_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    method: str
    parameters_schema: _struct_pb2.Struct
    parameter_mapping: _containers.ScalarMap[str, str]
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., method: _Optional[str] = ..., parameters_schema: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., parameter_mapping: _Optional[_Mapping[str, str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class FieldViolation(_message.Message):
    __slots__ = ("field", "description")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    field: str
    description: str
    def __init__(self, field: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class RegisterMethodRequest(_message.Message):
    __slots__ = ("method", "worker_id", "address", "lease_ttl")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    LEASE_TTL_FIELD_NUMBER: _ClassVar[int]
    method: Method
    worker_id: str
    address: str
    lease_ttl: _duration_pb2.Duration
    def __init__(self, method: _Optional[_Union[Method, _Mapping]] = ..., worker_id: _Optional[str] = ..., address: _Optional[str] = ..., lease_ttl: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class RegisterMethodResponse(_message.Message):
    __slots__ = ("method", "created")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    method: Method
    created: bool
    def __init__(self, method: _Optional[_Union[Method, _Mapping]] = ..., created: _Optional[bool] = ...) -> None: ...

class GetMethodRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetMethodResponse(_message.Message):
    __slots__ = ("method",)
    METHOD_FIELD_NUMBER: _ClassVar[int]
    method: Method
    def __init__(self, method: _Optional[_Union[Method, _Mapping]] = ...) -> None: ...

class ListMethodsRequest(_message.Message):
    __slots__ = ("domain", "tag", "page_size", "page_token")
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    domain: str
    tag: str
    page_size: int
    page_token: str
    def __init__(self, domain: _Optional[str] = ..., tag: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListMethodsResponse(_message.Message):
    __slots__ = ("methods", "next_page_token")
    METHODS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    methods: _containers.RepeatedCompositeFieldContainer[Method]
    next_page_token: str
    def __init__(self, methods: _Optional[_Iterable[_Union[Method, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class SearchMethodsRequest(_message.Message):
    __slots__ = ("query", "page_size")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    query: str
    page_size: int
    def __init__(self, query: _Optional[str] = ..., page_size: _Optional[int] = ...) -> None: ...

class SearchMethodsResult(_message.Message):
    __slots__ = ("method", "score")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    method: Method
    score: float
    def __init__(self, method: _Optional[_Union[Method, _Mapping]] = ..., score: _Optional[float] = ...) -> None: ...

class SearchMethodsResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[SearchMethodsResult]
    def __init__(self, results: _Optional[_Iterable[_Union[SearchMethodsResult, _Mapping]]] = ...) -> None: ...

class UpdateMethodRequest(_message.Message):
    __slots__ = ("method", "update_mask")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    method: Method
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, method: _Optional[_Union[Method, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateMethodResponse(_message.Message):
    __slots__ = ("method",)
    METHOD_FIELD_NUMBER: _ClassVar[int]
    method: Method
    def __init__(self, method: _Optional[_Union[Method, _Mapping]] = ...) -> None: ...

class DeleteMethodRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteMethodResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ValidateParametersRequest(_message.Message):
    __slots__ = ("name", "params")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    name: str
    params: _struct_pb2.Struct
    def __init__(self, name: _Optional[str] = ..., params: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class ValidateParametersResponse(_message.Message):
    __slots__ = ("valid", "violations")
    VALID_FIELD_NUMBER: _ClassVar[int]
    VIOLATIONS_FIELD_NUMBER: _ClassVar[int]
    valid: bool
    violations: _containers.RepeatedCompositeFieldContainer[FieldViolation]
    def __init__(self, valid: _Optional[bool] = ..., violations: _Optional[_Iterable[_Union[FieldViolation, _Mapping]]] = ...) -> None: ...

class RegisterToolRequest(_message.Message):
    __slots__ = ("tool",)
    TOOL_FIELD_NUMBER: _ClassVar[int]
    tool: Tool
    def __init__(self, tool: _Optional[_Union[Tool, _Mapping]] = ...) -> None: ...

class RegisterToolResponse(_message.Message):
    __slots__ = ("tool",)
    TOOL_FIELD_NUMBER: _ClassVar[int]
    tool: Tool
    def __init__(self, tool: _Optional[_Union[Tool, _Mapping]] = ...) -> None: ...

class GetToolRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetToolResponse(_message.Message):
    __slots__ = ("tool",)
    TOOL_FIELD_NUMBER: _ClassVar[int]
    tool: Tool
    def __init__(self, tool: _Optional[_Union[Tool, _Mapping]] = ...) -> None: ...

class ListToolsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListToolsResponse(_message.Message):
    __slots__ = ("tools", "next_page_token")
    TOOLS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    tools: _containers.RepeatedCompositeFieldContainer[Tool]
    next_page_token: str
    def __init__(self, tools: _Optional[_Iterable[_Union[Tool, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteToolRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteToolResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WatchMethodsRequest(_message.Message):
    __slots__ = ("domain",)
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    domain: str
    def __init__(self, domain: _Optional[str] = ...) -> None: ...

class WatchMethodsResponse(_message.Message):
    __slots__ = ("type", "method")
    class EventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        EVENT_TYPE_UNSPECIFIED: _ClassVar[WatchMethodsResponse.EventType]
        EVENT_TYPE_EXISTING: _ClassVar[WatchMethodsResponse.EventType]
        EVENT_TYPE_SYNCED: _ClassVar[WatchMethodsResponse.EventType]
        EVENT_TYPE_UPSERTED: _ClassVar[WatchMethodsResponse.EventType]
        EVENT_TYPE_DELETED: _ClassVar[WatchMethodsResponse.EventType]
    EVENT_TYPE_UNSPECIFIED: WatchMethodsResponse.EventType
    EVENT_TYPE_EXISTING: WatchMethodsResponse.EventType
    EVENT_TYPE_SYNCED: WatchMethodsResponse.EventType
    EVENT_TYPE_UPSERTED: WatchMethodsResponse.EventType
    EVENT_TYPE_DELETED: WatchMethodsResponse.EventType
    TYPE_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    type: WatchMethodsResponse.EventType
    method: Method
    def __init__(self, type: _Optional[_Union[WatchMethodsResponse.EventType, str]] = ..., method: _Optional[_Union[Method, _Mapping]] = ...) -> None: ...

class HeartbeatRequest(_message.Message):
    __slots__ = ("worker_id", "address", "method_names", "lease_ttl")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    METHOD_NAMES_FIELD_NUMBER: _ClassVar[int]
    LEASE_TTL_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    address: str
    method_names: _containers.RepeatedScalarFieldContainer[str]
    lease_ttl: _duration_pb2.Duration
    def __init__(self, worker_id: _Optional[str] = ..., address: _Optional[str] = ..., method_names: _Optional[_Iterable[str]] = ..., lease_ttl: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class HeartbeatResponse(_message.Message):
    __slots__ = ("lease_expire_time", "unknown_methods")
    LEASE_EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    UNKNOWN_METHODS_FIELD_NUMBER: _ClassVar[int]
    lease_expire_time: _timestamp_pb2.Timestamp
    unknown_methods: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, lease_expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., unknown_methods: _Optional[_Iterable[str]] = ...) -> None: ...
