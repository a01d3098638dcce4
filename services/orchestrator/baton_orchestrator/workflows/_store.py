"""Workflow definitions in SQL: workflows and their immutable versions."""

from __future__ import annotations

import builtins
import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from baton_core import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    NotFound,
    decode_page_token,
    encode_page_token,
    finish_before_cancel,
    invalid_page_token,
    new_etag,
    new_id,
    utcnow,
)

from . import _tables as t
from ._definition import WorkflowDef
from ._records import utc

ACTIVE, DELETED = "ACTIVE", "DELETED"


@dataclass
class WorkflowRecord:
    """One version of a workflow with the workflow's own fields."""

    workflow_id: str
    version: int
    definition: WorkflowDef
    status: str
    etag: str
    create_time: dt.datetime
    update_time: dt.datetime
    delete_time: dt.datetime | None


class DefinitionStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @finish_before_cancel
    async def create(self, defn: WorkflowDef, workflow_id: str = "",
                     request_id: str = "") -> WorkflowRecord:
        if request_id:
            found = await self._by_request_id(request_id)
            if found is not None:
                return found
        workflow_id = workflow_id or new_id("wf_")
        now = utcnow()
        try:
            async with self._engine.begin() as conn:
                await conn.execute(insert(t.workflows).values(
                    workflow_id=workflow_id, name=defn.name, status=ACTIVE, latest_version=1,
                    etag=new_etag(), request_id=request_id or None, create_time=now,
                    update_time=now))
                await conn.execute(insert(t.workflow_versions).values(
                    workflow_id=workflow_id, version=1, definition=defn.to_dict(),
                    create_time=now))
        except IntegrityError as exc:
            if request_id:
                found = await self._by_request_id(request_id)
                if found is not None:
                    return found
            raise AlreadyExists(f"workflow {workflow_id} already exists",
                                metadata={"workflow_id": workflow_id}) from exc
        return await self.get(workflow_id)

    async def _by_request_id(self, request_id: str) -> WorkflowRecord | None:
        async with self._engine.connect() as conn:
            found = (await conn.execute(select(t.workflows.c.workflow_id).where(
                t.workflows.c.request_id == request_id))).scalar()
        return None if found is None else await self.get(found, 1)

    async def get(self, workflow_id: str, version: int = 0) -> WorkflowRecord:
        w, v = t.workflows, t.workflow_versions
        query = (select(w, v.c.version, v.c.definition, v.c.create_time.label("version_time"))
                 .join(v, v.c.workflow_id == w.c.workflow_id)
                 .where(w.c.workflow_id == workflow_id,
                        v.c.version == (version or w.c.latest_version)))
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            what = f"workflow {workflow_id}" + (f" version {version}" if version else "")
            raise NotFound(f"{what} does not exist", reason="WORKFLOW_NOT_FOUND",
                           metadata={"workflow_id": workflow_id})
        return _record(row)

    async def list(self, *, name: str = "", status: str = ACTIVE, size: int,
                   token: str) -> tuple[list[WorkflowRecord], str]:
        w, v = t.workflows, t.workflow_versions
        scope = f"workflows\0{name}\0{status}"
        after = decode_page_token(token, scope, t=str, id=str)
        when = None
        if after:
            try:
                when = dt.datetime.fromisoformat(after["t"])
            except ValueError:
                raise invalid_page_token() from None
        query = (select(w, v.c.version, v.c.definition, v.c.create_time.label("version_time"))
                 .join(v, and_(v.c.workflow_id == w.c.workflow_id,
                               v.c.version == w.c.latest_version))
                 .where(w.c.status == status)
                 .order_by(w.c.create_time, w.c.workflow_id).limit(size + 1))
        if name:
            query = query.where(w.c.name == name)
        if when is not None:
            query = query.where(or_(w.c.create_time > when,
                                    and_(w.c.create_time == when, w.c.workflow_id > after["id"])))
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        records = [_record(r) for r in rows[:size]]
        token = ""
        if len(rows) > size:
            last = records[-1]
            token = encode_page_token({"t": last.create_time.isoformat(), "id": last.workflow_id},
                                  scope)
        return records, token

    async def versions(self, workflow_id: str, *, size: int,
                       token: str) -> tuple[builtins.list[WorkflowRecord], str]:
        latest = await self.get(workflow_id)
        scope = f"versions\0{workflow_id}"
        before = decode_page_token(token, scope, v=int).get("v", latest.version + 1)
        w, v = t.workflows, t.workflow_versions
        query = (select(w, v.c.version, v.c.definition, v.c.create_time.label("version_time"))
                 .join(v, v.c.workflow_id == w.c.workflow_id)
                 .where(w.c.workflow_id == workflow_id, v.c.version < before)
                 .order_by(v.c.version.desc()).limit(size + 1))
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        records = [_record(r) for r in rows[:size]]
        return records, (encode_page_token({"v": records[-1].version}, scope)
                         if len(rows) > size else "")

    @finish_before_cancel
    async def update(self, workflow_id: str, defn: WorkflowDef, etag: str = "") -> WorkflowRecord:
        """Stores `defn` as the next version; `etag`, when given, must be current."""
        current = await self.get(workflow_id)
        if current.status == DELETED:
            raise FailedPrecondition(f"workflow {workflow_id} is deleted",
                                     reason="WORKFLOW_DELETED",
                                     metadata={"workflow_id": workflow_id})
        now = utcnow()
        w = t.workflows
        async with self._engine.begin() as conn:
            condition = [w.c.workflow_id == workflow_id,
                         w.c.latest_version == current.version, w.c.status == ACTIVE]
            if etag:
                condition.append(w.c.etag == etag)
            result = await conn.execute(update(w).where(*condition).values(
                latest_version=current.version + 1, name=defn.name, etag=new_etag(),
                update_time=now))
            if result.rowcount != 1:
                raise Aborted(f"workflow {workflow_id} changed meanwhile; read it and retry",
                              reason="STALE_ETAG", metadata={"workflow_id": workflow_id})
            await conn.execute(insert(t.workflow_versions).values(
                workflow_id=workflow_id, version=current.version + 1,
                definition=defn.to_dict(), create_time=now))
        return await self.get(workflow_id)

    @finish_before_cancel
    async def delete(self, workflow_id: str) -> WorkflowRecord:
        await self.get(workflow_id)
        now = utcnow()
        async with self._engine.begin() as conn:
            await conn.execute(update(t.workflows).where(
                t.workflows.c.workflow_id == workflow_id, t.workflows.c.status == ACTIVE)
                .values(status=DELETED, delete_time=now, update_time=now, etag=new_etag()))
        return await self.get(workflow_id)


def _record(row: Any) -> WorkflowRecord:
    return WorkflowRecord(
        workflow_id=row.workflow_id, version=row.version,
        definition=WorkflowDef.from_dict(row.definition), status=row.status, etag=row.etag,
        create_time=utc(row.create_time), update_time=utc(row.version_time),
        delete_time=utc(row.delete_time))
