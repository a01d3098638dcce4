"""`baton dispatch`, `baton methods ...`, `baton sessions ...`: thin CLI over the SDK clients."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from typing import Any

import typer
from google.protobuf import json_format
from google.protobuf.message import Message

from baton.sessions.v1.sessions_pb2 import Session
from baton_core import BatonError, not_json_numbers
from baton_core import constants as c
from baton_sdk import OrchestratorClient, RegistryClient, SessionsClient

from ._auth_commands import sent_token

methods_app = typer.Typer(help="Registered methods.", no_args_is_help=True)
sessions_app = typer.Typer(help="User sessions.", no_args_is_help=True)


def service_address(env: str, port: int, given: str | None = None) -> str:
    """`given` (an option's value), else the environment variable `env`, else the
    default port on this machine."""
    return given or os.environ.get(env) or f"127.0.0.1:{port}"


def _address_option(service: str, env: str, port: int) -> Any:
    return typer.Option(None, f"--{service}",
                        help=f"Address (host:port) of the {service} service (default: ${env} "
                             f"or 127.0.0.1:{port}).")


ORCHESTRATOR_OPTION = _address_option("orchestrator", c.ENV_ORCHESTRATOR_ADDR, c.ORCHESTRATOR_PORT)
_REGISTRY = _address_option("registry", c.ENV_REGISTRY_ADDR, c.REGISTRY_PORT)
_SESSIONS = _address_option("sessions", c.ENV_SESSIONS_ADDR, c.SESSIONS_PORT)


def _plain(value: Any) -> Any:
    """JSON-ready, in the gateway's shape: every scalar and list printed, defaults
    included (an empty listing is `{"methods": []}`, not `{}`); whole numbers as
    integers. A Struct holds every number as a double, which Python's JSON
    printed as `5.0` where grpcurl and the gateway print `5`."""
    if isinstance(value, Message):
        value = json_format.MessageToDict(value, preserving_proto_field_name=True,
                                          always_print_fields_with_no_presence=True)
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def show(value: Any) -> None:
    typer.echo(json.dumps(_plain(value), indent=2))


def hint(err: BatonError) -> str:
    """What to do about a failure that is about reaching the platform, not the call."""
    if err.code.name == "UNAUTHENTICATED" and not os.environ.get(c.ENV_TOKEN, "").strip():
        return ("hint: the CLI sends $BATON_TOKEN: export BATON_TOKEN=$(baton token "
                "--role admin), with --data-dir if `baton up` runs with another")
    if err.code.name == "UNAVAILABLE" and "failed to connect" in err.message:
        return ("hint: is the platform running (`baton up`)? Another address: the command's "
                "--orchestrator/--registry/--sessions option or BATON_ORCHESTRATOR_ADDR, "
                "BATON_REGISTRY_ADDR, BATON_SESSIONS_ADDR")
    if err.code.name == "UNIMPLEMENTED" and "Method not found" in err.message:
        return ("hint: that address answers gRPC but does not serve this service: is it "
                f"the right port? (by default registry {c.REGISTRY_PORT}, orchestrator "
                f"{c.ORCHESTRATOR_PORT}, sessions {c.SESSIONS_PORT})")
    return ""


def fail(err: BatonError) -> None:
    message = err.message
    if err.violations and all(f"{f}: {d}" in message for f, d in err.violations):
        # The message ends with the violations joined; they follow one per line.
        message = message.split(": ", 1)[0] + ":"
    typer.secho(f"error: {err.code.name}: {message}", fg="red", err=True)
    for field, description in err.violations:
        typer.secho(f"  {field}: {description}", err=True)
    if text := hint(err):
        typer.secho(text, err=True)
    raise typer.Exit(1)


def parse_json(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"{what} is not valid JSON: {exc}") from exc
    except RecursionError:
        raise typer.BadParameter(f"{what} is nested too deeply") from None
    if problems := not_json_numbers(value, what):
        raise typer.BadParameter(f"{what} holds numbers JSON cannot (NaN, Infinity): "
                                 + ", ".join(f for f, _ in problems))
    if not isinstance(value, dict):
        raise typer.BadParameter(f"{what} must be a JSON object")
    return value


def _call(client: Callable[[str | None], Any], address: str | None,
          call: Callable[[Any], Awaitable[Any]]) -> None:
    """Runs `call` with a client of the service at `address` (made by `client`),
    printing what it returns, or a readable error."""

    async def body():
        async with client(address) as opened:
            return await call(opened)

    try:
        result = asyncio.run(body())
    except BatonError as err:
        fail(err)
    else:
        if result is not None:
            show(result)


def dispatch(
    operation: str = typer.Argument(..., help="Dotted method name, e.g. casefile.create."),
    params: str = typer.Option("{}", "--params", "-p", help="Params as a JSON object."),
    session: str = typer.Option("", "--session", help="Session to record the execution in."),
    timeout: float = typer.Option(0.0, help="Timeout in seconds (0: the method's "
                                  "or policy's default)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate and run the pre-hooks "
                                 "only; execute nothing."),
    idempotency_key: str = typer.Option("", "--idempotency-key", help="Repeating the call "
                                        "with this key returns its first result."),
    skip_hook: list[str] = typer.Option([], "--skip-hook", help="A hook not to run (repeat "
                                        "it); only hooks the policy lets callers skip."),
    orchestrator: str = ORCHESTRATOR_OPTION,
) -> None:
    """Dispatch one operation through the orchestrator and print its result."""
    if not 0 <= timeout <= 24 * 3600:  # (NaN too)
        raise typer.BadParameter("must be a number of seconds from 0 to 86400",
                                 param_hint="--timeout")
    values = parse_json(params, "--params")
    _call(_orchestrator, orchestrator, lambda client: client.dispatch(
        operation, values, session_id=session, timeout=timeout or None, dry_run=dry_run,
        idempotency_key=idempotency_key or None, skip_hooks=skip_hook))


def _orchestrator(address: str | None) -> OrchestratorClient:
    return OrchestratorClient(
        service_address(c.ENV_ORCHESTRATOR_ADDR, c.ORCHESTRATOR_PORT, address),
        token=sent_token())


def _registry(address: str | None) -> RegistryClient:
    return RegistryClient(service_address(c.ENV_REGISTRY_ADDR, c.REGISTRY_PORT, address),
                          token=sent_token())


@methods_app.command("list")
def methods_list(domain: str = typer.Option("", help="Only this domain."),
                 tag: str = typer.Option("", help="Only this tag."),
                 registry: str = _REGISTRY) -> None:
    """List registered methods."""
    _call(_registry, registry, lambda client: client.list_methods(domain=domain, tag=tag))


@methods_app.command("get")
def methods_get(name: str, registry: str = _REGISTRY) -> None:
    """Show one method with its schemas and endpoints."""
    _call(_registry, registry, lambda client: client.get_method(name))


@methods_app.command("delete")
def methods_delete(name: str, registry: str = _REGISTRY) -> None:
    """Delete a method and its endpoints (a worker that serves it registers it again)."""

    async def delete(client: RegistryClient) -> None:
        await client.delete_method(name)
        typer.echo(f"deleted {name}")

    _call(_registry, registry, delete)


@methods_app.command("search")
def methods_search(query: str, registry: str = _REGISTRY) -> None:
    """Search methods by name, description and tags."""
    _call(_registry, registry, lambda client: client.search_methods(query))


def _sessions(address: str | None) -> SessionsClient:
    return SessionsClient(service_address(c.ENV_SESSIONS_ADDR, c.SESSIONS_PORT, address),
                          token=sent_token())


@sessions_app.command("create")
def sessions_create(user: str = typer.Option(..., "--user", help="Owner of the session."),
                    casefile: str = typer.Option("", "--casefile", help="Casefile to link."),
                    sessions: str = _SESSIONS):
    """Find or create the active session of a user (and casefile)."""
    _call(_sessions, sessions, lambda client: client.find_or_create(user, casefile))


@sessions_app.command("get")
def sessions_get(session_id: str, sessions: str = _SESSIONS) -> None:
    """Show one session."""
    _call(_sessions, sessions, lambda client: client.get_session(session_id))


@sessions_app.command("history")
def sessions_history(session_id: str, sessions: str = _SESSIONS) -> None:
    """List the executions of a session, newest first."""
    _call(_sessions, sessions, lambda client: client.list_session_executions(session_id))


@sessions_app.command("close")
def sessions_close(session_id: str, sessions: str = _SESSIONS) -> None:
    """Close a session (closing a closed one changes nothing)."""
    _call(_sessions, sessions, lambda client: client.close_session(session_id))


@sessions_app.command("list")
def sessions_list(
    user: str = typer.Option("", "--user", help="Only this user's sessions."),
    casefile: str = typer.Option("", "--casefile", help="Only sessions on this casefile."),
    active: bool = typer.Option(False, "--active", help="Only active sessions."),
    limit: int = typer.Option(20, "--limit", min=1, max=1000, help="At most this many."),
    page_token: str = typer.Option("", "--page-token", help="Go on from where a listing "
                                   "stopped (its next_page_token)."),
    sessions: str = _SESSIONS,
) -> None:
    """List sessions, newest first (JSON, with next_page_token when there are more)."""
    status = Session.STATUS_ACTIVE if active else Session.STATUS_UNSPECIFIED
    _call(_sessions, sessions, lambda client: client.list_sessions(
        user_id=user, casefile_id=casefile, page_size=limit, page_token=page_token,
        status=status))
