"""`baton token` and `baton apikey`: credentials for the platform's auth."""

from __future__ import annotations

import contextlib
import getpass
import os
import secrets
from pathlib import Path

import grpc
import typer
import yaml

from baton_core import (
    AuthConfig,
    SettingError,
    access,
    api_keys_from,
    channel_options,
    credential_header,
    hash_api_key,
    issue_token,
    yaml_setting_file,
)
from baton_core import constants as c

apikey_app = typer.Typer(help="API keys (stored hashed).", no_args_is_help=True)

# The longest `baton token --ttl`: ten years.
MAX_TOKEN_TTL = 10 * 365 * 24 * 3600.0


def sent_token() -> str | None:
    """$BATON_TOKEN as the CLI sends it; exit 2 when no gRPC header can carry it
    (a line break or a non-ASCII character pasted with it), which gRPC would
    otherwise refuse mid-call with a traceback or a bare INTERNAL."""
    token = os.environ.get(c.ENV_TOKEN, "").strip()
    if token and not (token.isascii() and token.isprintable()):
        typer.secho(f"error: ${c.ENV_TOKEN} holds a line break or a non-ASCII character, "
                    "which no gRPC header can carry: set it to the token alone, e.g. "
                    "export BATON_TOKEN=$(baton token --role admin)", fg="red", err=True)
        raise typer.Exit(2)
    return token or None


def _roles(roles: list[str]) -> list[str]:
    """The roles asked for; an unknown one would make a credential nothing accepts."""
    unknown = sorted(set(roles) - set(access.ROLES))
    if unknown:
        raise typer.BadParameter(f"unknown role(s) {', '.join(unknown)}; known: "
                                 f"{', '.join(access.ROLES)}", param_hint="--role")
    return roles


def token(
    role: list[str] = typer.Option(..., "--role", "-r", help="Role to grant (repeatable): "
                                   + ", ".join(access.ROLES) + "."),
    subject: str = typer.Option("", "--subject", "-s", help="Who the token names "
                                "(default: your user name)."),
    ttl: float = typer.Option(3600.0, "--ttl", min=1.0, max=MAX_TOKEN_TTL,
                              help="Seconds until the token expires (at most ten years)."),
    data_dir: Path = typer.Option(Path("./.baton"), "--data-dir",
                                  help="The data directory of `baton up` (its JWT secret)."),
) -> None:
    """Print a signed JWT for the platform (the secret of `baton up` or BATON_JWT_SECRET)."""
    config = AuthConfig.from_env(data_dir.resolve())
    if not (config.secret or config.private_key):
        typer.secho(f"error: no signing key: start `baton up --data-dir {data_dir}` once, or "
                    f"set {c.ENV_JWT_SECRET} / {c.ENV_JWT_PRIVATE_KEY_FILE}", fg="red", err=True)
        raise typer.Exit(1)
    who = subject or os.environ.get("USER") or getpass.getuser() or "cli"
    typer.echo(issue_token(config, who, _roles(role), ttl=ttl))


@apikey_app.command("create")
def apikey_create(
    subject: str = typer.Option(..., "--subject", "-s", help="Who the key names."),
    role: list[str] = typer.Option(..., "--role", "-r", help="Role to grant (repeatable)."),
    file: Path = typer.Option(..., "--file", "-f", help=f"The keys file ({c.ENV_API_KEYS_FILE})."),
) -> None:
    """Create an API key, store its hash in FILE and print the key (shown only once)."""
    key = c.API_KEY_PREFIX + secrets.token_urlsafe(32)
    data = _keys_file(file)
    data["keys"] = list(data.get("keys") or [])
    data["keys"].append(
        {"subject": subject, "sha256": hash_api_key(key), "roles": _roles(role)})
    _write_keys(file, data)
    typer.echo(key)


def _keys_file(file: Path, must_exist: bool = False) -> dict:
    """The keys file's content (empty when there is none yet); a usage error, with
    nothing written, when it cannot be used."""
    if must_exist and not file.exists():
        raise typer.BadParameter(f"{file} does not exist", param_hint="--file")
    try:
        data = dict(yaml_setting_file(c.ENV_API_KEYS_FILE, file)) if file.exists() else {}
        api_keys_from(data, file)  # refuses a file it could not use
    except SettingError as exc:
        raise typer.BadParameter(f"{exc}; nothing was written", param_hint="--file") from None
    return data


def _write_keys(file: Path, data: dict) -> None:
    """Replaces the keys file whole (a write cut short leaves the old one); a usage
    error, with the file as it was, when it cannot be written."""
    temporary = file.with_name(f".{file.name}.tmp")
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(yaml.safe_dump(data, sort_keys=False))
        os.replace(temporary, file)
    except OSError as exc:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
        raise typer.BadParameter(f"cannot write {file}: {exc.strerror or exc}; nothing was "
                                 "written", param_hint="--file") from None


_FILE_OPTION = typer.Option(..., "--file", "-f", help=f"The keys file ({c.ENV_API_KEYS_FILE}).")


@apikey_app.command("list")
def apikey_list(file: Path = _FILE_OPTION) -> None:
    """List the keys in FILE: subject, roles and the start of the key's hash."""
    for entry in _keys_file(file, must_exist=True).get("keys") or []:
        typer.echo(f"{entry['subject']}\t{','.join(entry.get('roles') or [])}\t"
                   f"sha256:{entry['sha256'][:12]}")


@apikey_app.command("revoke")
def apikey_revoke(
    subject: str = typer.Option(..., "--subject", "-s", help="Revoke every key of this subject."),
    file: Path = _FILE_OPTION,
) -> None:
    """Remove a subject's keys from FILE.

    Services that read the file (BATON_API_KEYS_FILE) refuse the keys within a
    second, without a restart."""
    data = _keys_file(file, must_exist=True)
    kept = [e for e in data.get("keys") or [] if e["subject"] != subject]
    removed = len(data.get("keys") or []) - len(kept)
    if not removed:
        raise typer.BadParameter(f"no key of {subject!r} in {file}", param_hint="--subject")
    data["keys"] = kept
    _write_keys(file, data)
    typer.echo(f"revoked {removed} key(s) of {subject}; services that read {file} refuse "
               "them within a second")


class _Bearer(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    """Adds $BATON_TOKEN (a JWT, or an API key) to every call of a sync channel."""

    def __init__(self, token: str) -> None:
        self._header = credential_header(token)

    def _details(self, details):
        metadata = [*(details.metadata or ()), self._header]
        return details._replace(metadata=metadata)

    def intercept_unary_unary(self, continuation, client_call_details, request):
        return continuation(self._details(client_call_details), request)

    def intercept_unary_stream(self, continuation, client_call_details, request):
        return continuation(self._details(client_call_details), request)


def authorized_channel(target: str) -> grpc.Channel:
    """A sync channel to `target` that sends BATON_TOKEN, when set, with every call."""
    channel = grpc.insecure_channel(target, options=channel_options())
    token = sent_token()
    return grpc.intercept_channel(channel, _Bearer(token)) if token else channel
