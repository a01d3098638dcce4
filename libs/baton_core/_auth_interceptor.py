"""The auth interceptor: every RPC but health and reflection needs a caller
with a role the RPC accepts; servicers read that caller with `current_identity()`."""

from __future__ import annotations

import contextvars
import logging

import grpc

from . import _constants as c
from ._access import SERVICE, is_open, roles_for
from ._auth import ANONYMOUS, AuthConfig, Authenticator, Identity
from ._errors import BatonError, PermissionDenied

log = logging.getLogger("baton.auth")

_identity: contextvars.ContextVar[Identity] = contextvars.ContextVar(
    "baton_identity", default=ANONYMOUS)


def current_identity() -> Identity:
    """The caller of the RPC being served (anonymous admin with auth off)."""
    return _identity.get()


def _header(metadata, name: str) -> str:
    for key, value in metadata or ():
        if key == name:
            return value if isinstance(value, str) else value.decode()
    return ""


def _delegated(metadata, default: Identity, via: str = "") -> Identity:
    actor = _header(metadata, c.ACTOR_HEADER)
    if not actor:
        return default
    roles = tuple(r for r in _header(metadata, c.ROLES_HEADER).split(",") if r)
    return Identity(actor, roles if roles or via else default.roles, via)


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Authenticates each call and checks its roles against `roles_for`.

    A caller holding the `service` role may name the actor it acts for in
    `x-baton-actor` (and `x-baton-roles`); from anyone else those headers are
    ignored. With auth off every caller is let in, as the actor the headers
    name (default: anonymous with the admin role).
    """

    def __init__(self, config: AuthConfig) -> None:
        self.config = config
        self._authenticator = Authenticator(config) if config.enabled else None

    def identify(self, method: str, metadata) -> Identity:
        """The identity a call acts as, or raises Unauthenticated / PermissionDenied."""
        if self._authenticator is None:
            return _delegated(metadata, ANONYMOUS)
        caller = self._authenticator.authenticate(
            _header(metadata, c.AUTHORIZATION_HEADER), _header(metadata, c.API_KEY_HEADER))
        allowed = roles_for(method)
        if not caller.has_any(allowed):
            raise PermissionDenied(
                f"{method.lstrip('/')} needs one of the roles {', '.join(sorted(allowed))}; "
                f"{caller.subject} has {', '.join(caller.roles) or 'none'}",
                reason="ROLE_REQUIRED", metadata={"method": method.lstrip("/"),
                                                  "subject": caller.subject})
        if SERVICE in caller.roles:
            return _delegated(metadata, caller, via=caller.subject)
        return caller

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or is_open(method):
            return handler
        try:
            identity, error = self.identify(method, handler_call_details.invocation_metadata), None
        except BatonError as exc:
            identity, error = None, exc
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                _unary(handler.unary_unary, identity, error),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                _stream(handler.unary_stream, identity, error),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)
        if error is not None or handler.stream_unary or handler.stream_stream:
            # No Baton RPC streams requests; refuse rather than serve unchecked.
            return grpc.unary_unary_rpc_method_handler(_unary(None, None, error or PermissionDenied(
                f"{method} is not callable with authentication on")))
        return handler


async def _refuse(context: grpc.aio.ServicerContext, error: BatonError) -> None:
    await context.abort(error.code, error.message, error.trailing_metadata())


def _unary(fn, identity: Identity | None, error: BatonError | None):
    async def handler(request, context):
        if error is not None:
            await _refuse(context, error)
        token = _identity.set(identity)
        try:
            return await fn(request, context)
        finally:
            _identity.reset(token)

    return handler


def _stream(fn, identity: Identity | None, error: BatonError | None):
    async def handler(request, context):
        if error is not None:
            await _refuse(context, error)
        _identity.set(identity)
        async for item in fn(request, context):
            yield item

    return handler


def auth_interceptor(config: AuthConfig) -> AuthInterceptor:
    """The interceptor for `config`, warning loudly when auth is off."""
    if not config.enabled:
        log.warning("AUTHENTICATION IS OFF (%s=off): every caller is trusted as the actor it "
                    "names; never run this way outside a trusted machine", c.ENV_AUTH)
    else:
        config.check()
    return AuthInterceptor(config)
