"""Checks on what callers send: names, JSON Schemas, params, tools.

Checks return `(field, description)` violations so that one response can list
every problem; `require` turns them into INVALID_ARGUMENT.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from baton_core import (
    InvalidArgument,
    ParamsValidator,
    bounded,
    constants,
    not_json_numbers,
    required,
    schema_problems,
    status_code_named,
)

from ._models import Method, Tool
from ._object_schemas import object_problems

Violation = tuple[str, str]

METHOD_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
DOMAIN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")
VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$")
TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# Identifiers (method names, domains, tags, worker ids and addresses, mapped
# parameter names) fit the registry's varchar(255) columns; a lookup or filter
# longer than that could match nothing and is refused as well.
MAX_NAME = 255
MAX_TAGS = 64
MAX_DESCRIPTION = 16 * 1024  # characters, of a method or a tool
MAX_QUERY = 1000  # characters of a SearchMethods query
# Names one Heartbeat renews (each is a lookup under the lock).
MAX_HEARTBEAT_METHODS = constants.MAX_HEARTBEAT_METHODS
MAX_TIMEOUT = 24 * 3600.0  # as a policy's max_timeout
# Codes a retry policy names: each of gRPC's 17 status codes at most once.
MAX_RETRYABLE_CODES = 17


def require(violations: list[Violation], message: str) -> None:
    """Raises INVALID_ARGUMENT listing `violations`, if there are any."""
    if violations:
        more = len(violations) - 1
        raise InvalidArgument(
            f"{message}: {violations[0][0]}: {violations[0][1]}"
            + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""),
            violations=violations)


def lookup(value: str, field: str = "name") -> str:
    """A name to look up: required, and no longer than anything stored."""
    return bounded(required(value, field), field, MAX_NAME)


def check_length(value: str, field: str, limit: int = MAX_NAME) -> list[Violation]:
    return [(field, f"must be at most {limit:,} characters, not {len(value):,}")] \
        if len(value) > limit else []


def check_method_name(name: str, field: str) -> list[Violation]:
    if not name:
        return [(field, "is required")]
    if len(name) > MAX_NAME or not METHOD_NAME.match(name):
        return [(field, f"{name!r} is not a dotted lower-case name like 'casefile.create'")]
    return []


def check_method(method: Method, field: str = "method") -> list[Violation]:
    """Every problem with a method a caller sent."""
    found = check_method_name(method.name, f"{field}.name")
    if method.version and not VERSION.match(method.version):
        found.append((f"{field}.version", f"{method.version!r} is not a version label"))
    found += check_length(method.description, f"{field}.description", MAX_DESCRIPTION)
    if len(method.domain) > MAX_NAME:
        found += check_length(method.domain, f"{field}.domain")
    elif method.domain and not DOMAIN.match(method.domain):
        found.append((f"{field}.domain", f"{method.domain!r} is not a lower-case domain"))
    if len(method.tags) > MAX_TAGS:
        found.append((f"{field}.tags", f"at most {MAX_TAGS} tags, not {len(method.tags)}"))
    seen: set[str] = set()
    for i, tag in enumerate(method.tags):
        if not tag or len(tag) > MAX_NAME:
            found.append((f"{field}.tags[{i}]", "must be 1 to 255 characters"))
        elif tag in seen:
            found.append((f"{field}.tags[{i}]", f"{tag!r} is repeated"))
        seen.add(tag)
    found += check_schema(method.input_schema, f"{field}.input_schema", "params")
    found += check_schema(method.output_schema, f"{field}.output_schema", "results")
    if not 0 <= method.default_timeout <= MAX_TIMEOUT:
        found.append((f"{field}.default_timeout", "must be from 0 to 24h"))
    found += _check_retry_policy(method.retry_policy, f"{field}.retry_policy")
    return found


def _check_retry_policy(policy: dict[str, Any], field: str) -> list[Violation]:
    found = []
    for key in ("max_attempts", "initial_delay", "max_delay", "multiplier"):
        if policy.get(key, 0) < 0:
            found.append((f"{field}.{key}", "must not be negative"))
    if 0 < policy.get("max_delay", 0) < policy.get("initial_delay", 0):
        found.append((f"{field}.max_delay", "must not be less than initial_delay"))
    codes = policy.get("retryable_codes", ())
    if len(codes) > MAX_RETRYABLE_CODES:  # (one violation, not one per entry)
        found.append((f"{field}.retryable_codes",
                      f"at most {MAX_RETRYABLE_CODES} codes, not {len(codes):,}"))
        return found
    seen = set()
    for i, name in enumerate(codes):
        code = status_code_named(name)
        if code is None:
            found.append((f"{field}.retryable_codes[{i}]", f"{name!r} is not a gRPC status code"))
        elif code in seen:  # ("unavailable" repeats "UNAVAILABLE": both name one code)
            found.append((f"{field}.retryable_codes[{i}]", f"{name!r} is repeated"))
        seen.add(code)
    return found


# Largest JSON Schema a method or tool may carry: methods are listed a page at a
# time, and each page must stay well under the 16 MiB message limit.
MAX_SCHEMA_BYTES = 256 * 1024


def check_schema(schema: dict[str, Any], field: str, of: str) -> list[Violation]:
    """Why `schema` is not a valid JSON Schema of `of` ("params"), which are always
    a JSON object; an empty schema accepts anything."""
    if not schema:
        return []
    size = len(json.dumps(schema, default=str))
    if size > MAX_SCHEMA_BYTES:
        return [(field, f"is {size:,} bytes as JSON; at most {MAX_SCHEMA_BYTES:,}")]
    found = not_json_numbers(schema, field) or schema_problems(schema, field)
    named = {f for f, _ in found}  # (a bad "type" is said once)
    return found + [v for v in object_problems(schema, field, of) if v[0] not in named]


def check_params(schema: dict[str, Any], params: dict[str, Any]) -> list[Violation]:
    """Every way `params` breaks `schema`, with paths like `params.items[2].name`.

    Uses the validator the orchestrator applies at dispatch, so both agree.

    Raises:
        FailedPrecondition: the schema refers to something it cannot resolve.
    """
    return ParamsValidator(schema).violations(params)


def check_worker(worker_id: str, address: str, lease_ttl: float, *,
                 required: bool) -> list[Violation]:
    """A worker needs both an id and an address; RegisterMethod may omit both."""
    found = check_length(worker_id, "worker_id") + check_length(address, "address")
    if required or worker_id or address:
        found += [(field, "is required" if required else "is required with the other of "
                   "worker_id and address") for field, value in
                  (("worker_id", worker_id), ("address", address)) if not value]
    if not 0 <= lease_ttl <= MAX_TIMEOUT:
        found.append(("lease_ttl", "must be from 0 to 24h"))
    return found


def check_tool(tool: Tool) -> list[Violation]:
    """Problems with a tool that need no lookup."""
    found = []
    if not TOOL_NAME.match(tool.name):
        found.append(("tool.name", "must be 1 to 64 letters, digits, '_' or '-'"))
    found += check_method_name(tool.method, "tool.method")
    found += check_length(tool.description, "tool.description", MAX_DESCRIPTION)
    for key, value in sorted(tool.parameter_mapping.items()):
        found += check_length(key, f"tool.parameter_mapping.{key}") \
            or check_length(value, f"tool.parameter_mapping.{key}")
    found += check_schema(tool.parameters_schema, "tool.parameters_schema", "tool arguments")
    return found


def check_tool_mapping(tool: Tool, method: Method) -> list[Violation]:
    """Mapping keys must be tool parameters and values method parameters, where declared."""
    tool_params = _properties(tool.parameters_schema)
    method_params = _properties(method.input_schema)
    found = []
    targets: dict[str, str] = {}
    for key, value in sorted(tool.parameter_mapping.items()):  # (a map has no order)
        field = f"tool.parameter_mapping.{key}"
        if tool_params is not None and key not in tool_params:
            found.append((field, f"{key!r} is not a property of the tool's parameters_schema"))
        if method_params is not None and value not in method_params:
            found.append((field, f"{value!r} is not a parameter of method {method.name!r}"))
        if value in targets:
            found.append((field, f"{value!r} is already the target of {targets[value]!r}"))
        targets.setdefault(value, key)
    return found


def tools_broken_by(method: Method, tools: Iterable[Tool]) -> list[Violation]:
    """What the tools mapping onto `method` would lose with its new input schema."""
    method_params = _properties(method.input_schema)
    if method_params is None:
        return []
    return [(f"tools.{tool.name}.parameter_mapping.{key}",
             f"maps onto {value!r}, which the new input schema of {method.name!r} lacks")
            for tool in tools for key, value in tool.parameter_mapping.items()
            if value not in method_params]


def _properties(schema: dict[str, Any]) -> Iterable[str] | None:
    properties = schema.get("properties")
    return properties if isinstance(properties, dict) and properties else None
