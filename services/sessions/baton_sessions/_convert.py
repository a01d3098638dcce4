"""The one place where records become protobuf messages and back."""

from __future__ import annotations

from google.protobuf import duration_pb2, timestamp_pb2

from baton.sessions.v1 import sessions_pb2 as pb
from baton_core import dict_to_struct, struct_to_dict

from . import _records as r
from ._records import EventRecord, ExecutionRecord, SessionRecord

_SESSION_STATUS = {r.ACTIVE: pb.Session.STATUS_ACTIVE, r.CLOSED: pb.Session.STATUS_CLOSED,
                   r.EXPIRED: pb.Session.STATUS_EXPIRED}
_SESSION_STATUS_NAME = {v: k for k, v in _SESSION_STATUS.items()}
_EXECUTION_STATUS = {r.UNSPECIFIED: pb.Execution.STATUS_UNSPECIFIED,
                     r.SUCCEEDED: pb.Execution.STATUS_SUCCEEDED,
                     r.FAILED: pb.Execution.STATUS_FAILED}
_EXECUTION_STATUS_NAME = {v: k for k, v in _EXECUTION_STATUS.items()}
_EVENT_TYPE = {
    r.CREATED_EVENT: pb.SessionEvent.TYPE_CREATED,
    r.LINKED_EVENT: pb.SessionEvent.TYPE_LINKED,
    r.EXECUTION_TRACKED_EVENT: pb.SessionEvent.TYPE_EXECUTION_TRACKED,
    r.CONTEXT_CHANGED_EVENT: pb.SessionEvent.TYPE_CONTEXT_CHANGED,
    r.CLOSED_EVENT: pb.SessionEvent.TYPE_CLOSED,
    r.EXPIRED_EVENT: pb.SessionEvent.TYPE_EXPIRED,
}


def timestamp(us: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=us // 1_000_000, nanos=us % 1_000_000 * 1000)


def timestamp_us(message: timestamp_pb2.Timestamp) -> int:
    return message.seconds * 1_000_000 + message.nanos // 1000


def session_status_name(status: pb.Session.Status) -> str:
    """"" for STATUS_UNSPECIFIED (no filter)."""
    return _SESSION_STATUS_NAME.get(status, "")


def execution_status_name(status: pb.Execution.Status) -> str:
    return _EXECUTION_STATUS_NAME.get(status, r.UNSPECIFIED)


def session_to_proto(record: SessionRecord) -> pb.Session:
    message = pb.Session()
    fill_session(message, record)
    return message


def fill_session(message: pb.Session, record: SessionRecord) -> None:
    """Writes `record` into an empty `message`, such as a response's field.

    Setting fields in place costs a third of building the submessages and
    copying them in, which shows on GetSession.
    """
    message.session_id = record.session_id
    message.user_id = record.user_id
    message.casefile_id = record.casefile_id
    message.status = _SESSION_STATUS[record.status]
    if record.labels:
        message.labels.update(record.labels)
    _set_timestamp(message.create_time, record.create_time)
    _set_timestamp(message.last_activity_time, record.last_activity_time)
    if record.end_time is not None:
        _set_timestamp(message.end_time, record.end_time)
    message.execution_count = record.execution_count
    context = message.context
    context.values.SetInParent()  # present even when empty, as clients have always seen
    if record.context:
        context.values.update(record.context)
    context.etag = record.etag


def _set_timestamp(message: timestamp_pb2.Timestamp, us: int) -> None:
    message.seconds = us // 1_000_000
    message.nanos = us % 1_000_000 * 1000


def context_to_proto(record: SessionRecord) -> pb.SessionContext:
    return pb.SessionContext(values=dict_to_struct(record.context), etag=record.etag)


def execution_from_proto(message: pb.Execution, session_id: str, execution_id: str,
                         now: int) -> ExecutionRecord:
    return ExecutionRecord(
        execution_id=execution_id, session_id=session_id, operation=message.operation,
        status=execution_status_name(message.status),
        duration_ns=message.duration.ToNanoseconds(), error=message.error,
        run_id=message.run_id, step_id=message.step_id, actor=message.actor,
        create_time=now, result=struct_to_dict(message.result))


def execution_to_proto(record: ExecutionRecord) -> pb.Execution:
    duration = duration_pb2.Duration()
    duration.FromNanoseconds(record.duration_ns)
    return pb.Execution(
        execution_id=record.execution_id, session_id=record.session_id,
        operation=record.operation, status=_EXECUTION_STATUS[record.status],
        duration=duration, error=record.error, run_id=record.run_id, step_id=record.step_id,
        actor=record.actor, create_time=timestamp(record.create_time),
        result=dict_to_struct(record.result))


def encode_execution(record: ExecutionRecord) -> tuple[int, bytes]:
    """(commit order, bytes) as the hot tier keeps recent history."""
    return record.seq, execution_to_proto(record).SerializeToString(deterministic=True)


def decode_execution(data: bytes) -> pb.Execution:
    return pb.Execution.FromString(data)


def event_to_proto(record: EventRecord) -> pb.SessionEvent:
    return pb.SessionEvent(
        sequence=record.sequence,
        type=_EVENT_TYPE.get(record.type, pb.SessionEvent.TYPE_UNSPECIFIED),
        session_id=record.session_id, data=dict_to_struct(record.data),
        create_time=timestamp(record.create_time))
