import datetime

from baton.orchestrator.v1 import circuit_breakers_pb2 as _circuit_breakers_pb2
from baton.orchestrator.v1 import hooks_pb2 as _hooks_pb2
from baton.registry.v1 import registry_pb2 as _registry_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RateLimit(_message.Message):
    __slots__ = ("requests_per_second", "burst")
    REQUESTS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    BURST_FIELD_NUMBER: _ClassVar[int]
    requests_per_second: float
    burst: int
    def __init__(self, requests_per_second: _Optional[float] = ..., burst: _Optional[int] = ...) -> None: ...

class Policy(_message.Message):
    __slots__ = ("name", "pattern", "hooks", "default_timeout", "max_timeout", "retry_policy", "required_roles", "description", "actor_rate_limit", "operation_rate_limit", "max_concurrency", "circuit_breaker", "skippable_hooks", "idempotency_window", "etag", "source", "create_time", "update_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PATTERN_FIELD_NUMBER: _ClassVar[int]
    HOOKS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    MAX_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    RETRY_POLICY_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_ROLES_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    ACTOR_RATE_LIMIT_FIELD_NUMBER: _ClassVar[int]
    OPERATION_RATE_LIMIT_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    CIRCUIT_BREAKER_FIELD_NUMBER: _ClassVar[int]
    SKIPPABLE_HOOKS_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_WINDOW_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    pattern: str
    hooks: _containers.RepeatedScalarFieldContainer[str]
    default_timeout: _duration_pb2.Duration
    max_timeout: _duration_pb2.Duration
    retry_policy: _registry_pb2.RetryPolicy
    required_roles: _containers.RepeatedScalarFieldContainer[str]
    description: str
    actor_rate_limit: RateLimit
    operation_rate_limit: RateLimit
    max_concurrency: int
    circuit_breaker: _circuit_breakers_pb2.CircuitBreakerConfig
    skippable_hooks: _containers.RepeatedScalarFieldContainer[str]
    idempotency_window: _duration_pb2.Duration
    etag: str
    source: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., pattern: _Optional[str] = ..., hooks: _Optional[_Iterable[str]] = ..., default_timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., max_timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., retry_policy: _Optional[_Union[_registry_pb2.RetryPolicy, _Mapping]] = ..., required_roles: _Optional[_Iterable[str]] = ..., description: _Optional[str] = ..., actor_rate_limit: _Optional[_Union[RateLimit, _Mapping]] = ..., operation_rate_limit: _Optional[_Union[RateLimit, _Mapping]] = ..., max_concurrency: _Optional[int] = ..., circuit_breaker: _Optional[_Union[_circuit_breakers_pb2.CircuitBreakerConfig, _Mapping]] = ..., skippable_hooks: _Optional[_Iterable[str]] = ..., idempotency_window: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., etag: _Optional[str] = ..., source: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListPoliciesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListPoliciesResponse(_message.Message):
    __slots__ = ("policies",)
    POLICIES_FIELD_NUMBER: _ClassVar[int]
    policies: _containers.RepeatedCompositeFieldContainer[Policy]
    def __init__(self, policies: _Optional[_Iterable[_Union[Policy, _Mapping]]] = ...) -> None: ...

class GetPolicyRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetPolicyResponse(_message.Message):
    __slots__ = ("policy",)
    POLICY_FIELD_NUMBER: _ClassVar[int]
    policy: Policy
    def __init__(self, policy: _Optional[_Union[Policy, _Mapping]] = ...) -> None: ...

class CreatePolicyRequest(_message.Message):
    __slots__ = ("policy",)
    POLICY_FIELD_NUMBER: _ClassVar[int]
    policy: Policy
    def __init__(self, policy: _Optional[_Union[Policy, _Mapping]] = ...) -> None: ...

class CreatePolicyResponse(_message.Message):
    __slots__ = ("policy",)
    POLICY_FIELD_NUMBER: _ClassVar[int]
    policy: Policy
    def __init__(self, policy: _Optional[_Union[Policy, _Mapping]] = ...) -> None: ...

class UpdatePolicyRequest(_message.Message):
    __slots__ = ("policy", "update_mask")
    POLICY_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    policy: Policy
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, policy: _Optional[_Union[Policy, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdatePolicyResponse(_message.Message):
    __slots__ = ("policy",)
    POLICY_FIELD_NUMBER: _ClassVar[int]
    policy: Policy
    def __init__(self, policy: _Optional[_Union[Policy, _Mapping]] = ...) -> None: ...

class DeletePolicyRequest(_message.Message):
    __slots__ = ("name", "etag")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    name: str
    etag: str
    def __init__(self, name: _Optional[str] = ..., etag: _Optional[str] = ...) -> None: ...

class DeletePolicyResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ExplainPolicyRequest(_message.Message):
    __slots__ = ("operation", "actor", "roles")
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    operation: str
    actor: str
    roles: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, operation: _Optional[str] = ..., actor: _Optional[str] = ..., roles: _Optional[_Iterable[str]] = ...) -> None: ...

class ExplainPolicyResponse(_message.Message):
    __slots__ = ("policy", "matching_policies", "pre_hooks", "post_hooks", "missing_hooks", "timeout", "max_timeout", "retry_policy", "allowed", "denied_reason", "method_registered", "actor", "roles", "circuit_breaker", "endpoint_breakers")
    class EndpointBreaker(_message.Message):
        __slots__ = ("endpoint", "config", "endpoint_override")
        ENDPOINT_FIELD_NUMBER: _ClassVar[int]
        CONFIG_FIELD_NUMBER: _ClassVar[int]
        ENDPOINT_OVERRIDE_FIELD_NUMBER: _ClassVar[int]
        endpoint: str
        config: _circuit_breakers_pb2.CircuitBreakerConfig
        endpoint_override: bool
        def __init__(self, endpoint: _Optional[str] = ..., config: _Optional[_Union[_circuit_breakers_pb2.CircuitBreakerConfig, _Mapping]] = ..., endpoint_override: _Optional[bool] = ...) -> None: ...
    POLICY_FIELD_NUMBER: _ClassVar[int]
    MATCHING_POLICIES_FIELD_NUMBER: _ClassVar[int]
    PRE_HOOKS_FIELD_NUMBER: _ClassVar[int]
    POST_HOOKS_FIELD_NUMBER: _ClassVar[int]
    MISSING_HOOKS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    MAX_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    RETRY_POLICY_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_FIELD_NUMBER: _ClassVar[int]
    DENIED_REASON_FIELD_NUMBER: _ClassVar[int]
    METHOD_REGISTERED_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    CIRCUIT_BREAKER_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_BREAKERS_FIELD_NUMBER: _ClassVar[int]
    policy: Policy
    matching_policies: _containers.RepeatedScalarFieldContainer[str]
    pre_hooks: _containers.RepeatedCompositeFieldContainer[_hooks_pb2.Hook]
    post_hooks: _containers.RepeatedCompositeFieldContainer[_hooks_pb2.Hook]
    missing_hooks: _containers.RepeatedScalarFieldContainer[str]
    timeout: _duration_pb2.Duration
    max_timeout: _duration_pb2.Duration
    retry_policy: _registry_pb2.RetryPolicy
    allowed: bool
    denied_reason: str
    method_registered: bool
    actor: str
    roles: _containers.RepeatedScalarFieldContainer[str]
    circuit_breaker: _circuit_breakers_pb2.CircuitBreakerConfig
    endpoint_breakers: _containers.RepeatedCompositeFieldContainer[ExplainPolicyResponse.EndpointBreaker]
    def __init__(self, policy: _Optional[_Union[Policy, _Mapping]] = ..., matching_policies: _Optional[_Iterable[str]] = ..., pre_hooks: _Optional[_Iterable[_Union[_hooks_pb2.Hook, _Mapping]]] = ..., post_hooks: _Optional[_Iterable[_Union[_hooks_pb2.Hook, _Mapping]]] = ..., missing_hooks: _Optional[_Iterable[str]] = ..., timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., max_timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., retry_policy: _Optional[_Union[_registry_pb2.RetryPolicy, _Mapping]] = ..., allowed: _Optional[bool] = ..., denied_reason: _Optional[str] = ..., method_registered: _Optional[bool] = ..., actor: _Optional[str] = ..., roles: _Optional[_Iterable[str]] = ..., circuit_breaker: _Optional[_Union[_circuit_breakers_pb2.CircuitBreakerConfig, _Mapping]] = ..., endpoint_breakers: _Optional[_Iterable[_Union[ExplainPolicyResponse.EndpointBreaker, _Mapping]]] = ...) -> None: ...
