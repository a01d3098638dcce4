"""The `baton` command line."""

from __future__ import annotations

import importlib

import typer

from baton_core import Settings, configure_logging, run, run_app

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
    settings = Settings.from_env(kind)
    configure_logging(settings.extra.get("log_level", "INFO"))
    module = importlib.import_module(_SERVICES[kind])
    built = module.build_app(settings)
    run(lambda: run_app(built, settings.listen, grace=settings.shutdown_grace))


def main() -> None:
    app()
