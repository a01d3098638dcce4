"""An example worker: casefiles with notes, plus demo methods for tests and benchmarks.

Run it with ``python -m baton_examples.casefile_worker``. Environment:

- ``BATON_REGISTRY_ADDR``: the registry (default 127.0.0.1:50051).
- ``BATON_WORKER_LISTEN``: address to serve on (default 127.0.0.1:50060).
- ``BATON_WORKER_ADVERTISE_HOST``: host given to callers (default: the listen
  host, or 127.0.0.1 when it listens on all interfaces).
- ``BATON_WORKER_ID``: stable worker id (default ``casefile-worker@<address>``,
  or a unique id when the port is 0).
- ``BATON_DATA_DIR``: where ``casefile_worker.db`` lives (default ./.baton).
- ``BATON_TOKEN``: bearer token (role ``worker``) for the registry when auth is on.
- ``BATON_AUTH`` / ``BATON_JWT_SECRET`` (or the secret ``baton up`` keeps in the
  data directory): with auth on and a key known, only the orchestrator (role
  ``service``) or an admin may invoke the methods.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from baton_core import (
    AuthConfig,
    configure_logging,
    constants,
    error_for_code,
    float_setting,
    run,
    status_code_named,
)
from baton_sdk import InvocationContext, RetryPolicy, Worker, method

from .casefile_store import CasefileStore

log = logging.getLogger("baton.examples.casefile")

ENV_WORKER_LISTEN = constants.ENV_WORKER_LISTEN
ENV_WORKER_ADVERTISE_HOST = constants.ENV_WORKER_ADVERTISE_HOST
ENV_WORKER_ID = constants.ENV_WORKER_ID
DB_FILE = "casefile_worker.db"


class Params(BaseModel):
    """Input of a method: a field it does not know (a typo, say) is an error, not
    silently dropped; the derived JSON Schema says `additionalProperties: false`."""

    model_config = ConfigDict(extra="forbid")


class CreateCasefile(Params):
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=10_000)


class CasefileCreated(BaseModel):
    casefile_id: str


class AddNote(Params):
    casefile_id: str = Field(min_length=1)
    text: str = Field(min_length=1, max_length=10_000)


class NoteAdded(BaseModel):
    note_id: str
    note_count: int


class ListNotes(Params):
    casefile_id: str = Field(min_length=1)


class NoteView(BaseModel):
    note_id: str
    text: str
    seq: int
    create_time: str


class NoteList(BaseModel):
    notes: list[NoteView]


class CasefileMethods:
    """The casefile.* methods, bound to one store."""

    def __init__(self, store: CasefileStore) -> None:
        self.store = store

    @method("casefile.create", tags=["casefile", "write"],
            retry=RetryPolicy(max_attempts=3, retryable_codes=("UNAVAILABLE",)))
    async def create(self, params: CreateCasefile, ctx: InvocationContext) -> CasefileCreated:
        """Creates a casefile; a repeated idempotency key returns the first casefile."""
        casefile_id = await self.store.create_casefile(
            params.title, params.description, ctx.idempotency_key)
        return CasefileCreated(casefile_id=casefile_id)

    @method("casefile.add_note", tags=["casefile", "notes", "write"])
    async def add_note(self, params: AddNote, ctx: InvocationContext) -> NoteAdded:
        """Adds a note to a casefile; a repeated idempotency key adds nothing and
        returns the first result. NOT_FOUND when the casefile does not exist."""
        note = await self.store.add_note(params.casefile_id, params.text, ctx.idempotency_key)
        return NoteAdded(note_id=note.note_id, note_count=note.seq)

    @method("casefile.list_notes", tags=["casefile", "notes", "read"], idempotent=True)
    async def list_notes(self, params: ListNotes) -> NoteList:
        """Lists a casefile's notes, oldest first. NOT_FOUND when the casefile does not exist."""
        notes = await self.store.list_notes(params.casefile_id)
        return NoteList(notes=[NoteView(note_id=n.note_id, text=n.text, seq=n.seq,
                                        create_time=n.create_time) for n in notes])

    def methods(self) -> list[Any]:
        return [self.create, self.add_note, self.list_notes]


class Sleep(Params):
    seconds: float = Field(ge=0, le=3600)


class Slept(BaseModel):
    slept: float


@method("demo.sleep", tags=["demo"], timeout=3600.0, idempotent=True)
async def sleep(params: Sleep) -> Slept:
    """Sleeps for `seconds`; stops early when the caller's deadline passes."""
    started = time.monotonic()
    await asyncio.sleep(params.seconds)
    return Slept(slept=round(time.monotonic() - started, 6))


FailCode = Literal["INTERNAL", "UNAVAILABLE", "ABORTED", "FAILED_PRECONDITION",
                   "RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED", "NOT_FOUND", "PERMISSION_DENIED"]


class Fail(Params):
    message: str = "demo.fail always fails"
    code: FailCode | None = Field(
        default=None, description="Status to fail with; unset raises a RuntimeError (INTERNAL).")


class Nothing(BaseModel):
    pass


@method("demo.fail", tags=["demo"], idempotent=True, retry=RetryPolicy.never())
async def fail(params: Fail) -> Nothing:
    """Always fails with `message`, as a RuntimeError or with the status `code`."""
    if params.code is not None:
        raise error_for_code(status_code_named(params.code), params.message, reason="DEMO_FAILURE")
    raise RuntimeError(params.message)


class Echo(Params):
    value: Any = None


@method("demo.echo", tags=["demo", "benchmark"], idempotent=True)
async def echo(params: Echo) -> Echo:
    """Returns `value` unchanged."""
    return params


def build_worker(store: CasefileStore, **options: Any) -> Worker:
    """The example worker over `store`; `options` go to Worker."""
    return Worker([*CasefileMethods(store).methods(), sleep, fail, echo], **options)


def _env(name: str, default: str) -> str:
    return os.environ.get(name, "").strip() or default


async def main() -> None:
    configure_logging(_env(constants.ENV_LOG_LEVEL, "INFO"))
    listen = _env(ENV_WORKER_LISTEN, f"127.0.0.1:{constants.WORKER_PORT}")
    host, port = listen.rsplit(":", 1)
    host = host.strip("[]")
    advertise = _env(ENV_WORKER_ADVERTISE_HOST,
                     "127.0.0.1" if host in ("", "0.0.0.0", "::") else host)
    data_dir = Path(_env(constants.ENV_DATA_DIR, constants.DEFAULT_DATA_DIR)).resolve()
    store = CasefileStore(data_dir / DB_FILE)
    config = AuthConfig.from_env(data_dir)
    auth: AuthConfig | None = config
    if config.enabled and not (config.secret or config.public_key or config.api_keys):
        log.warning("auth is on but this worker holds no key: it cannot verify its callers")
        auth = None
    await store.open()
    try:
        worker = build_worker(
            store, listen=listen, advertise_host=advertise,
            registry_addr=_env(constants.ENV_REGISTRY_ADDR, f"127.0.0.1:{constants.REGISTRY_PORT}"),
            worker_id=os.environ.get(ENV_WORKER_ID) or (
                f"casefile-worker@{advertise}:{port}" if port != "0" else None),
            lease_ttl=float_setting(os.environ, constants.ENV_LEASE_TTL, 10.0),
            token=os.environ.get(constants.ENV_TOKEN) or None, auth=auth)
        await worker.run()
    finally:
        await store.close()


if __name__ == "__main__":
    run(main)
