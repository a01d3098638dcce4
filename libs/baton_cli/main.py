"""The `baton` command line."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import typer

from baton_cli._auth_commands import apikey_app, token
from baton_cli._commands import dispatch, methods_app, sessions_app
from baton_cli._serve import hosted
from baton_cli._workflows import run as run_workflow
from baton_cli._workflows import runs_app, workflows_app
from baton_core import (
    ListenError,
    SettingError,
    Settings,
    configure_logging,
    constants,
    int_setting,
    run,
    run_app,
)

app = typer.Typer(help="Baton: a gRPC-native orchestration platform.", no_args_is_help=True)

_SERVICES = {
    "registry": "baton_registry",
    "orchestrator": "baton_orchestrator",
    "sessions": "baton_sessions",
}


@app.command()
def serve(kind: str = typer.Argument(..., help="registry | orchestrator | sessions")) -> None:
    """Run one service in the foreground until SIGTERM or Ctrl-C."""
    if kind not in _SERVICES:
        raise typer.BadParameter(f"unknown service {kind!r}; choose one of {', '.join(_SERVICES)}")
    try:
        settings = Settings.from_env(kind)
        configure_logging(os.environ.get(constants.ENV_LOG_LEVEL, "INFO"))
        module = importlib.import_module(_SERVICES[kind])
        built, interceptors = hosted(kind, settings, module.build_app(settings))
        run(lambda: run_app(built, settings.listen, grace=settings.shutdown_grace,
                            interceptors=interceptors))
    except (SettingError, ListenError) as exc:  # settings: some read only when first used
        typer.echo(f"baton serve {kind}: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command()
def up(
    data_dir: Path = typer.Option(Path("./.baton"), "--data-dir", help="Where SQLite files, "
                                  "Redis data and logs live."),
    host: str = typer.Option("127.0.0.1", help="Interface the services listen on."),
    no_worker: bool = typer.Option(False, "--no-worker", help="Do not start the example worker."),
    registry_port: int = typer.Option(constants.REGISTRY_PORT, help="MethodRegistry port."),
    orchestrator_port: int = typer.Option(constants.ORCHESTRATOR_PORT, help="Orchestrator port."),
    sessions_port: int = typer.Option(constants.SESSIONS_PORT, help="SessionOrchestrator port."),
    worker_port: int = typer.Option(constants.WORKER_PORT, help="Example worker port."),
    no_gateway: bool = typer.Option(False, "--no-gateway", help="Do not start the Envoy "
                                    "HTTP/JSON gateway."),
    gateway_port: int = typer.Option(constants.GATEWAY_PORT, help="Envoy gateway port."),
) -> None:
    """Start the whole platform on its embedded default (Ctrl-C stops it)."""
    from ._up import PlatformConfig, run_platform

    run_platform(PlatformConfig(data_dir=data_dir.resolve(), host=host,
                                redis_url=os.environ.get(constants.ENV_REDIS_URL, ""),
                                with_worker=not no_worker, registry_port=registry_port,
                                orchestrator_port=orchestrator_port, sessions_port=sessions_port,
                                worker_port=worker_port,
                                gateway_port=None if no_gateway else gateway_port,
                                metrics_port=int_setting(os.environ, constants.ENV_METRICS_PORT,
                                                         0, 1, 65533)))


app.command()(dispatch)
app.command()(token)
app.add_typer(apikey_app, name="apikey")
app.add_typer(methods_app, name="methods")
app.add_typer(sessions_app, name="sessions")
app.command(name="run")(run_workflow)
app.add_typer(runs_app, name="runs")
app.add_typer(workflows_app, name="workflows")


def main() -> None:
    try:
        app()
    except SettingError as exc:  # a setting the command read (up, token, ...): one line
        typer.echo(f"baton: {exc}", err=True)
        raise SystemExit(2) from None
