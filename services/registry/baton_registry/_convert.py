"""Protobuf ⇄ registry values, in one place."""

from __future__ import annotations

from typing import Any

from baton.registry.v1 import registry_pb2 as pb
from baton_core import (
    InvalidArgument,
    datetime_to_timestamp,
    dict_to_struct,
    duration_to_seconds,
    seconds_to_duration,
    struct_to_dict,
)

from ._models import Change, ChangeType, Endpoint, EndpointState, Method, Tool

_STATES = {
    EndpointState.AVAILABLE: pb.Endpoint.STATE_AVAILABLE,
    EndpointState.UNAVAILABLE: pb.Endpoint.STATE_UNAVAILABLE,
}
_EVENTS = {
    ChangeType.EXISTING: pb.WatchMethodsResponse.EVENT_TYPE_EXISTING,
    ChangeType.SYNCED: pb.WatchMethodsResponse.EVENT_TYPE_SYNCED,
    ChangeType.UPSERTED: pb.WatchMethodsResponse.EVENT_TYPE_UPSERTED,
    ChangeType.DELETED: pb.WatchMethodsResponse.EVENT_TYPE_DELETED,
}


def method_from_proto(message: pb.Method) -> Method:
    """The caller-settable fields of `message`; output-only fields are ignored."""
    return Method(
        name=message.name, version=message.version, description=message.description,
        domain=message.domain, tags=tuple(message.tags),
        input_schema=struct_to_dict(message.input_schema),
        output_schema=struct_to_dict(message.output_schema),
        default_timeout=duration_to_seconds(message.default_timeout),
        retry_policy=(_retry_from_proto(message.retry_policy)
                      if message.HasField("retry_policy") else {}),
        idempotent=message.idempotent,
    )


def method_to_proto(method: Method) -> pb.Method:
    message = pb.Method(
        name=method.name, version=method.version, description=method.description,
        domain=method.domain, tags=method.tags, idempotent=method.idempotent,
        endpoints=[_endpoint_to_proto(e) for e in method.endpoints],
        create_time=datetime_to_timestamp(method.create_time),
        update_time=datetime_to_timestamp(method.update_time),
    )
    if method.input_schema:
        message.input_schema.CopyFrom(dict_to_struct(method.input_schema))
    if method.output_schema:
        message.output_schema.CopyFrom(dict_to_struct(method.output_schema))
    if method.default_timeout:
        message.default_timeout.CopyFrom(seconds_to_duration(method.default_timeout))
    if method.retry_policy:
        message.retry_policy.CopyFrom(_retry_to_proto(method.retry_policy))
    return message


def populated_paths(message: pb.Method) -> list[str]:
    """Names of the fields set in `message`, for an update without a mask."""
    return [descriptor.name for descriptor, _ in message.ListFields()]


def tool_from_proto(message: pb.Tool) -> Tool:
    return Tool(
        name=message.name, method=message.method, description=message.description,
        parameters_schema=struct_to_dict(message.parameters_schema),
        parameter_mapping=dict(message.parameter_mapping),
    )


def tool_to_proto(tool: Tool) -> pb.Tool:
    message = pb.Tool(
        name=tool.name, method=tool.method, description=tool.description,
        parameter_mapping=tool.parameter_mapping,
        create_time=datetime_to_timestamp(tool.create_time),
    )
    if tool.parameters_schema:
        message.parameters_schema.CopyFrom(dict_to_struct(tool.parameters_schema))
    return message


def change_to_proto(change: Change) -> pb.WatchMethodsResponse:
    message = pb.WatchMethodsResponse(type=_EVENTS[change.type])
    if change.method is not None:
        message.method.CopyFrom(method_to_proto(change.method))
    return message


def _endpoint_to_proto(endpoint: Endpoint) -> pb.Endpoint:
    return pb.Endpoint(
        worker_id=endpoint.worker_id, address=endpoint.address,
        state=_STATES[endpoint.state],
        lease_expire_time=datetime_to_timestamp(endpoint.lease_expire_time),
    )


def _retry_from_proto(message: pb.RetryPolicy) -> dict[str, Any]:
    if message.strategy not in pb.RetryPolicy.Strategy.values():
        raise InvalidArgument(f"retry_policy.strategy {message.strategy} is not a strategy",
                              violations=[("method.retry_policy.strategy",
                                           f"{message.strategy} is not one of "
                                           f"{', '.join(pb.RetryPolicy.Strategy.keys())}")])
    return {
        "strategy": pb.RetryPolicy.Strategy.Name(message.strategy),
        "max_attempts": message.max_attempts,
        "initial_delay": duration_to_seconds(message.initial_delay),
        "max_delay": duration_to_seconds(message.max_delay),
        "multiplier": message.multiplier,
        "retryable_codes": list(message.retryable_codes),
    }


def _retry_to_proto(policy: dict[str, Any]) -> pb.RetryPolicy:
    return pb.RetryPolicy(
        strategy=policy.get("strategy", "STRATEGY_UNSPECIFIED"),
        max_attempts=policy.get("max_attempts", 0),
        initial_delay=seconds_to_duration(policy.get("initial_delay", 0.0)),
        max_delay=seconds_to_duration(policy.get("max_delay", 0.0)),
        multiplier=policy.get("multiplier", 0.0),
        retryable_codes=policy.get("retryable_codes", ()),
    )
