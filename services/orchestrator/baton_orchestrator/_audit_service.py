"""The AuditLog servicer: query records; accept those the other services send."""

from __future__ import annotations

import datetime as dt

from baton.orchestrator.v1 import audit_pb2, audit_pb2_grpc
from baton_core import (
    AuditEntry,
    InvalidArgument,
    datetime_to_timestamp,
    dict_to_struct,
    struct_to_dict,
    timestamp_problems,
)

from ._audit_log import AuditLog, AuditQuery

_MAX_WRITE = 1000
_MAX_ID = 64  # the length of ctl_audit.record_id


def entry_proto(entry: AuditEntry) -> audit_pb2.AuditRecord:
    return audit_pb2.AuditRecord(
        record_id=entry.record_id, time=datetime_to_timestamp(entry.time), actor=entry.actor,
        via=entry.via, action=entry.action, entity_type=entry.entity_type, entity=entry.entity,
        changes=dict_to_struct(entry.changes), outcome=entry.outcome, service=entry.service,
        roles=list(entry.roles))


def _stamp(message, field: str, where: str = ""):
    if not message.HasField(field):
        return None
    problems = timestamp_problems(getattr(message, field), where or field)
    if problems:
        raise InvalidArgument(f"{where or field} is not a valid time", violations=problems)
    return getattr(message, field).ToDatetime(tzinfo=dt.UTC)


class AuditLogServicer(audit_pb2_grpc.AuditLogServicer):
    def __init__(self, log: AuditLog) -> None:
        self._log = log

    async def ListAuditRecords(self, request, context):
        entries, token = await self._log.query(AuditQuery(
            actor=request.actor, action=request.action, entity_type=request.entity_type,
            entity=request.entity, outcome=request.outcome,
            start_time=_stamp(request, "start_time"), end_time=_stamp(request, "end_time"),
            page_size=request.page_size, page_token=request.page_token))
        return audit_pb2.ListAuditRecordsResponse(records=[entry_proto(e) for e in entries],
                                                  next_page_token=token)

    async def WriteAuditRecords(self, request, context):
        if len(request.records) > _MAX_WRITE:
            raise InvalidArgument(f"at most {_MAX_WRITE} records per call",
                                  violations=[("records", f"at most {_MAX_WRITE}")])
        problems = [(f"records[{i}].{name}", "is required")
                    for i, record in enumerate(request.records)
                    for name in ("record_id", "actor", "action", "entity_type")
                    if not getattr(record, name)]
        # The id is the record's identity: cutting it as the other fields are cut
        # would let two records collide.
        problems += [(f"records[{i}].record_id", f"must be at most {_MAX_ID} characters")
                     for i, record in enumerate(request.records)
                     if len(record.record_id) > _MAX_ID]
        if problems:
            raise InvalidArgument("incomplete audit records", violations=problems)
        entries = [AuditEntry(
            actor=r.actor, action=r.action, entity_type=r.entity_type, entity=r.entity,
            changes=struct_to_dict(r.changes), outcome=r.outcome or "OK", via=r.via,
            roles=tuple(r.roles), service=r.service, record_id=r.record_id,
            time=_stamp(r, "time", f"records[{i}].time") or dt.datetime.now(dt.UTC))
            for i, r in enumerate(request.records)]
        return audit_pb2.WriteAuditRecordsResponse(written=await self._log.write(entries))
