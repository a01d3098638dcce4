"""What `baton serve` puts around every service: auth, audit, the error interceptor."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import grpc
import prometheus_client

from baton_core import (
    App,
    AuditInterceptor,
    RemoteAuditSink,
    ServiceCredentials,
    SettingError,
    Settings,
    auth_interceptor,
    int_setting,
)
from baton_core import constants as c

log = logging.getLogger("baton.serve")


class _WithSink:
    """The app plus the audit sink it ships records through, stopped after it."""

    def __init__(self, app: App, sink: RemoteAuditSink) -> None:
        self._app = app
        self._sink = sink
        drain = getattr(app, "drain", None)
        if drain is not None:
            self.drain = drain

    def services(self):
        return self._app.services()

    async def start(self) -> None:
        await self._app.start()

    async def stop(self) -> None:
        try:
            await self._app.stop()
        finally:
            await self._sink.stop()


def hosted(kind: str, settings: Settings,
           app: App) -> tuple[App, Sequence[grpc.aio.ServerInterceptor]]:
    """The app to run and its interceptors: auth (a warning every start when it is
    off), then audit of mutating RPCs, kept by the app itself when it has an
    `audit_sink` (the orchestrator) and sent to the orchestrator otherwise."""
    auth = auth_interceptor(settings.auth)
    metrics_port = int_setting(os.environ, c.ENV_METRICS_PORT, 0, 1, 65535)
    if metrics_port:
        host = settings.listen.rsplit(":", 1)[0].strip("[]") or "0.0.0.0"
        try:
            prometheus_client.start_http_server(metrics_port, addr=host)
        except OSError as exc:
            raise SettingError(f"{c.ENV_METRICS_PORT}={metrics_port}: cannot listen on "
                               f"{host}:{metrics_port}: {exc.strerror or exc}") from None
        log.info("Prometheus metrics on port %s (/metrics)", metrics_port)
    sink = getattr(app, "audit_sink", None)
    if sink is None:
        credentials = ServiceCredentials(settings.auth, kind)
        credentials.own()  # fails now, not at the first record, when nothing can sign
        sink = RemoteAuditSink(settings.orchestrator_addr, credentials)
        app = _WithSink(app, sink)
    return app, [auth, AuditInterceptor(sink, kind)]
