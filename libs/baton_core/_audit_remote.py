"""Sends audit records to the orchestrator's AuditLog, in batches, in the background.

Records wait in a bounded buffer while the orchestrator is unreachable; the
oldest are dropped (and counted in the log) when it overflows. Each record has
its own id, so a batch sent twice is stored once.

Services may start in any order, so an orchestrator not reachable yet is
normal for a while: that is logged at INFO, and a WARNING follows only when
it stays unreachable for `warn_after` seconds.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time

import grpc
from google.protobuf import struct_pb2, timestamp_pb2

from ._audit import AuditEntry
from ._auth import ServiceCredentials
from ._channels import insecure_channel

log = logging.getLogger("baton.audit")

_BATCH = 500
# Seconds the orchestrator may stay unreachable before that is a warning.
WARN_AFTER = 30.0


def entry_to_proto(entry: AuditEntry):
    from baton.orchestrator.v1 import audit_pb2

    time = timestamp_pb2.Timestamp()
    time.FromDatetime(entry.time)
    changes = struct_pb2.Struct()
    changes.update(entry.changes)
    return audit_pb2.AuditRecord(
        record_id=entry.record_id, time=time, actor=entry.actor, via=entry.via,
        action=entry.action, entity_type=entry.entity_type, entity=entry.entity,
        changes=changes, outcome=entry.outcome, service=entry.service, roles=entry.roles)


class RemoteAuditSink:
    """An AuditSink that ships records to `address` (the orchestrator)."""

    def __init__(self, address: str, credentials: ServiceCredentials,
                 capacity: int = 50_000, interval: float = 0.2,
                 warn_after: float = WARN_AFTER) -> None:
        self.address = address
        self._warn_after = warn_after
        self._credentials = credentials
        self._buffer: collections.deque[AuditEntry] = collections.deque(maxlen=capacity)
        self._interval = interval
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._channel: grpc.aio.Channel | None = None
        self._dropped = 0

    def record(self, entry: AuditEntry) -> None:
        if len(self._buffer) == self._buffer.maxlen:
            self._dropped += 1
        self._buffer.append(entry)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="audit-ship")
        if len(self._buffer) >= _BATCH:
            self._wake.set()

    async def _run(self) -> None:
        from baton.orchestrator.v1 import audit_pb2_grpc

        self._channel = insecure_channel(self.address)
        stub = audit_pb2_grpc.AuditLogStub(self._channel)
        failing_since: float | None = None
        warned = False
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()
            try:
                await self._ship(stub)
            except grpc.aio.AioRpcError as exc:
                now = time.monotonic()
                if failing_since is None:
                    failing_since = now
                    log.info("cannot send audit records to %s yet (%s); keeping %d buffered "
                             "and retrying", self.address, exc.code().name, len(self._buffer))
                elif not warned and now - failing_since >= self._warn_after:
                    warned = True
                    log.warning("cannot send audit records to %s for %.0fs (%s); keeping %d "
                                "buffered", self.address, now - failing_since,
                                exc.code().name, len(self._buffer))
                await asyncio.sleep(min(1.0, self._warn_after))
            else:
                if failing_since is not None:
                    log.info("audit records reach %s again", self.address)
                failing_since, warned = None, False

    async def _ship(self, stub) -> None:
        from baton.orchestrator.v1 import audit_pb2

        if self._dropped:
            log.warning("dropped %d audit records: the buffer was full", self._dropped)
            self._dropped = 0
        while self._buffer:
            batch = [self._buffer[i] for i in range(min(_BATCH, len(self._buffer)))]
            await stub.WriteAuditRecords(
                audit_pb2.WriteAuditRecordsRequest(records=[entry_to_proto(e) for e in batch]),
                metadata=self._credentials.own(), timeout=5)
            for entry in batch:  # an overflow may have dropped some meanwhile
                if self._buffer and self._buffer[0] is entry:
                    self._buffer.popleft()

    async def stop(self, timeout: float = 2.0) -> None:
        """Sends what is buffered (for up to `timeout`), then stops; safe twice."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        if self._buffer and self._channel is not None:
            from baton.orchestrator.v1 import audit_pb2_grpc

            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    self._ship(audit_pb2_grpc.AuditLogStub(self._channel)), timeout)
            if self._buffer:
                log.warning("stopping with %d audit records unsent", len(self._buffer))
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
