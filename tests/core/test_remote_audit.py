"""The audit records a service sends to the orchestrator's AuditLog (RemoteAuditSink),
against a real AuditLog service on SQLite that starts late, as it may at `baton up`."""

from __future__ import annotations

import asyncio
import logging

import pytest

from baton.orchestrator.v1 import audit_pb2_grpc
from baton_core import (
    AuditEntry,
    AuthConfig,
    GrpcServer,
    RemoteAuditSink,
    Service,
    ServiceCredentials,
    free_port,
    make_engine,
)
from baton_orchestrator._audit_log import AuditLog, AuditQuery
from baton_orchestrator._audit_service import AuditLogServicer
from baton_orchestrator._control_store import ControlStore


@pytest.fixture
async def audit_log(tmp_path):
    """The orchestrator's audit log on its own SQLite database, migrated."""
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'control.db'}")
    await ControlStore(engine).migrate()
    log = AuditLog()
    log.attach(engine)
    yield log
    await log.stop()
    await engine.dispose()


async def serve(log: AuditLog, address: str) -> GrpcServer:
    server = GrpcServer(address, [Service("baton.orchestrator.v1.AuditLog",
                                          AuditLogServicer(log),
                                          audit_pb2_grpc.add_AuditLogServicer_to_server)])
    await server.start()
    return server


def entry(n: int) -> AuditEntry:
    return AuditEntry(actor="alice", action="create", entity_type="method",
                      entity=f"m.{n}", service="registry")


def sink(address: str, **kwargs) -> RemoteAuditSink:
    return RemoteAuditSink(address, ServiceCredentials(AuthConfig(enabled=False), "registry"),
                           interval=0.05, **kwargs)


async def stored(log: AuditLog) -> list[str]:
    entries, _ = await log.query(AuditQuery(page_size=1000))
    return sorted(e.entity for e in entries)


async def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


def messages(caplog, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "baton.audit" and r.levelno == level]


async def test_records_wait_for_an_orchestrator_that_starts_late_and_arrive_once(
        audit_log, caplog):
    caplog.set_level(logging.INFO, logger="baton.audit")
    address = f"127.0.0.1:{free_port()}"
    remote = sink(address)
    for n in range(3):
        remote.record(entry(n))
    await asyncio.sleep(0.5)  # several attempts while nothing listens
    assert await stored(audit_log) == []
    # Not reachable yet is how every `baton up` begins: INFO, not a warning.
    assert any("cannot send audit records" in m and "yet" in m
               for m in messages(caplog, logging.INFO))
    assert messages(caplog, logging.WARNING) == []

    server = await serve(audit_log, address)
    try:
        remote.record(entry(3))
        await wait_for(lambda: _count(audit_log, 4))
        assert await stored(audit_log) == ["m.0", "m.1", "m.2", "m.3"]
        assert any("reach" in m and "again" in m for m in messages(caplog, logging.INFO))
        await remote.stop()
        assert await stored(audit_log) == ["m.0", "m.1", "m.2", "m.3"]  # each once
    finally:
        await server.stop(0)


async def _count(log: AuditLog, n: int) -> bool:
    return len(await stored(log)) >= n


async def test_an_orchestrator_unreachable_for_long_is_one_warning(audit_log, caplog):
    caplog.set_level(logging.INFO, logger="baton.audit")
    remote = sink(f"127.0.0.1:{free_port()}", warn_after=0.3)
    remote.record(entry(0))
    await asyncio.sleep(1.2)
    warnings = messages(caplog, logging.WARNING)
    assert len(warnings) == 1, warnings
    assert "cannot send audit records" in warnings[0] and "keeping 1 buffered" in warnings[0]
    await remote.stop(timeout=0.2)
    assert "stopping with 1 audit records unsent" in messages(caplog, logging.WARNING)[-1]


async def test_a_full_buffer_drops_the_oldest_and_says_how_many(audit_log, caplog):
    caplog.set_level(logging.INFO, logger="baton.audit")
    address = f"127.0.0.1:{free_port()}"
    remote = sink(address, capacity=5)
    for n in range(8):
        remote.record(entry(n))
    server = await serve(audit_log, address)
    try:
        await wait_for(lambda: _count(audit_log, 5))
        await remote.stop()
        assert await stored(audit_log) == ["m.3", "m.4", "m.5", "m.6", "m.7"]
        assert "dropped 3 audit records: the buffer was full" in messages(
            caplog, logging.WARNING)
    finally:
        await server.stop(0)
