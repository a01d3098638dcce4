"""The @method decorator: validates a function and attaches its MethodDefinition.

Nothing is registered anywhere at import time; a Worker is handed the
decorated functions explicitly.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
import typing
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel

from baton.registry.v1 import registry_pb2
from baton_core import dict_to_struct, seconds_to_duration

from ._retry import RetryPolicy

_ATTR = "__baton_method__"
# The registry's rules, checked here too so that a bad name fails at import.
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")
VERSION_PATTERN = re.compile(r"[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}")
MAX_NAME = 255  # of a method name or a tag, as the registry has it
MAX_TIMEOUT = 24 * 3600.0

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


@dataclass(frozen=True)
class MethodDefinition:
    """Everything Baton knows about one method, derived from the decorated function.

    Attributes:
        name: Dotted name, e.g. `casefile.create`.
        version: Version label, e.g. `1.0.0`.
        description: What the method does (the docstring when not given).
        tags: Free-form tags for listing and search.
        input_schema: JSON Schema of the input model.
        output_schema: JSON Schema of the output model.
        timeout: Seconds the method may run when the caller sets no deadline.
        retry: How the orchestrator retries failed calls; None leaves it to
            the platform default.
        idempotent: Whether a repeated call is harmless.
        fn: The function (a bound method when taken from an instance).
        input_model: Pydantic model the params are validated against.
        output_model: Pydantic model of the result.
        takes_context: Whether `fn` takes an InvocationContext second argument.
    """

    name: str
    version: str
    description: str
    tags: tuple[str, ...]
    input_schema: dict[str, Any] = field(repr=False)
    output_schema: dict[str, Any] = field(repr=False)
    timeout: float | None
    retry: RetryPolicy | None
    idempotent: bool
    fn: Callable[..., Awaitable[Any]] = field(repr=False)
    input_model: type[BaseModel] = field(repr=False)
    output_model: type[BaseModel] = field(repr=False)
    takes_context: bool = False

    @property
    def domain(self) -> str:
        return self.name.split(".", 1)[0]

    @classmethod
    def from_callable(cls, fn: Callable[..., Any]) -> MethodDefinition:
        """Returns the definition @method attached to `fn` (bound methods included).

        Raises:
            TypeError: `fn` was not decorated with @method.
        """
        definition = getattr(fn, _ATTR, None)
        if not isinstance(definition, MethodDefinition):
            raise TypeError(f"{fn!r} is not decorated with @baton_sdk.method")
        if inspect.ismethod(fn):
            definition = dataclasses.replace(definition, fn=fn)
        return definition

    def to_proto(self) -> registry_pb2.Method:
        message = registry_pb2.Method(
            name=self.name, version=self.version, description=self.description,
            domain=self.domain, tags=list(self.tags),
            input_schema=dict_to_struct(self.input_schema),
            output_schema=dict_to_struct(self.output_schema),
            idempotent=self.idempotent)
        if self.timeout is not None:
            message.default_timeout.CopyFrom(seconds_to_duration(self.timeout))
        if self.retry is not None:
            message.retry_policy.CopyFrom(self.retry.to_proto())
        return message


def method(
    name: str,
    *,
    version: str = "1.0.0",
    description: str | None = None,
    tags: Sequence[str] = (),
    timeout: float | None = 30.0,
    retry: RetryPolicy | None = None,
    idempotent: bool = False,
) -> Callable[[F], F]:
    """Declares an async function as a Baton method.

    The function takes a pydantic model instance (the params) and optionally an
    InvocationContext, and returns a pydantic model instance::

        @method("casefile.create", description="Creates a casefile.")
        async def create(params: CreateCasefile, ctx: InvocationContext) -> Created: ...

    The function is returned unchanged, with a MethodDefinition attached.

    Args:
        name: Dotted method name, e.g. `casefile.create`.
        version: Version label, e.g. `1.0.0`.
        description: What the method does; defaults to the docstring.
        tags: Tags for listing and search.
        timeout: Seconds the method may run when the caller sets no deadline.
        retry: Retry policy published to the registry.
        idempotent: Whether a repeated call is harmless.

    Raises:
        TypeError: The function's signature is not as described above.
        ValueError: A bad name, version, tag or timeout.
    """
    if not NAME_PATTERN.fullmatch(name) or len(name) > MAX_NAME:
        raise ValueError(f"bad method name {name!r}: use lowercase dotted words, "
                         f"e.g. 'casefile.create', at most {MAX_NAME} characters")
    if not VERSION_PATTERN.fullmatch(version):
        raise ValueError(f"bad version {version!r}: use a version label, e.g. '1.0.0'")
    if isinstance(tags, str) or not all(isinstance(t, str) and t.strip() and len(t) <= MAX_NAME
                                        for t in tags):
        raise ValueError(f"tags must be a sequence of strings of 1 to {MAX_NAME} characters")
    if timeout is not None and not 0 < timeout <= MAX_TIMEOUT:
        raise ValueError(f"timeout must be more than 0 and at most {MAX_TIMEOUT:g} s (24 h)")

    def decorate(fn: F) -> F:
        in_model, out_model, takes_context = _inspect_signature(fn, name)
        schemas = (in_model.model_json_schema(),
                   out_model.model_json_schema(mode="serialization"))
        for schema, model in zip(schemas, (in_model, out_model), strict=True):
            try:  # what the registry stores must be JSON: no Infinity or NaN
                json.dumps(schema, allow_nan=False)
            except ValueError:
                raise ValueError(f"{name}: the JSON Schema of {model.__name__} holds a number "
                                 "JSON cannot (Infinity or NaN), e.g. a default") from None
        definition = MethodDefinition(
            name=name, version=version,
            description=description if description is not None else _summary(fn),
            tags=tuple(dict.fromkeys(t.strip() for t in tags)),
            input_schema=schemas[0], output_schema=schemas[1],
            timeout=timeout, retry=retry, idempotent=idempotent, fn=fn,
            input_model=in_model, output_model=out_model, takes_context=takes_context)
        setattr(fn, _ATTR, definition)
        return fn

    return decorate


def _inspect_signature(fn: Callable[..., Any], name: str
                       ) -> tuple[type[BaseModel], type[BaseModel], bool]:
    if not inspect.iscoroutinefunction(fn):
        raise TypeError(f"method {name!r}: {fn.__qualname__} must be an async function")
    params = list(inspect.signature(fn).parameters.values())
    if params and params[0].name in ("self", "cls"):
        params = params[1:]
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if len(params) not in (1, 2) or any(p.kind not in positional for p in params):
        raise TypeError(f"method {name!r}: {fn.__qualname__} must take (params) or "
                        "(params, ctx) as positional parameters")
    try:
        hints = typing.get_type_hints(fn)
    except NameError as exc:
        raise TypeError(f"method {name!r}: cannot resolve the annotations of "
                        f"{fn.__qualname__} ({exc}); define the models at module level") from exc
    in_model, out_model = (_model(name, fn, role, hints.get(hint))
                           for role, hint in (("params", params[0].name), ("return", "return")))
    return in_model, out_model, len(params) == 2


def _model(name: str, fn: Callable[..., Any], role: str, model: Any) -> type[BaseModel]:
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise TypeError(f"method {name!r}: the {role} annotation of {fn.__qualname__} "
                        f"must be a pydantic model, not {model!r}")
    return model


def _summary(fn: Callable[..., Any]) -> str:
    doc = inspect.getdoc(fn) or ""
    return doc.split("\n\n", 1)[0].replace("\n", " ").strip()
