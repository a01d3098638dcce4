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

# Outside an authenticated call (a background task, a server without this
# interceptor) the identity is an anonymous caller holding no role.
_NOBODY = Identity("anonymous")
_identity: contextvars.ContextVar[Identity] = contextvars.ContextVar(
    "baton_identity", default=_NOBODY)


def current_identity() -> Identity:
    """The caller of the RPC being served (with auth off: whom the call names, else
    anonymous with the admin role)."""
    return _identity.get()


def _header(metadata, name: str) -> str:
    for key, value in metadata or ():
        if key == name:
            return value if isinstance(value, str) else value.decode()
    return ""


def _credentials(metadata) -> tuple[str, str]:
    """The authorization header and the API key, in one pass over the metadata."""
    authorization = api_key = ""
    for key, value in metadata or ():
        if key == c.AUTHORIZATION_HEADER:
            authorization = value if isinstance(value, str) else value.decode()
        elif key == c.API_KEY_HEADER:
            api_key = value if isinstance(value, str) else value.decode()
    return authorization, api_key


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
        caller = self._authenticator.authenticate(*_credentials(metadata))
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
            identity = self.identify(method, handler_call_details.invocation_metadata)
        except BatonError as exc:
            return _refusal(handler, exc)
        if handler.stream_unary:
            # No Baton RPC streams requests into one answer; refuse rather than serve it
            # unchecked.
            return _refusal(handler, PermissionDenied(f"{method} is not callable here"))
        # grpc.aio runs the interceptors and the handler in the call's own task,
        # so the identity set here is the one the servicer reads; no wrapper needed.
        _identity.set(identity)
        return handler


def _refusal(handler, error: BatonError):
    """A handler of the same shape as `handler` that only refuses the call."""

    async def refuse(request, context):
        await context.abort(error.code, error.message, error.trailing_metadata())

    async def refuse_stream(request, context):
        await context.abort(error.code, error.message, error.trailing_metadata())
        yield  # pragma: no cover - makes this an async generator

    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(
            refuse_stream, request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer)
    if handler.stream_stream:
        return grpc.stream_stream_rpc_method_handler(
            refuse_stream, request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer)
    return grpc.unary_unary_rpc_method_handler(
        refuse, request_deserializer=None if handler.stream_unary
        else handler.request_deserializer, response_serializer=handler.response_serializer)


def auth_interceptor(config: AuthConfig) -> AuthInterceptor:
    """The interceptor for `config`, warning loudly when auth is off."""
    if not config.enabled:
        log.warning("AUTHENTICATION IS OFF (%s=off): every caller is trusted as the actor it "
                    "names; never run this way outside a trusted machine", c.ENV_AUTH)
    else:
        config.check()
    return AuthInterceptor(config)
