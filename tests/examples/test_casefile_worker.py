"""The example casefile worker, served on a real port with its own SQLite store."""

from __future__ import annotations

import time

import pytest

from baton_core import (
    DeadlineExceeded,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    NotFound,
    Unavailable,
    struct_to_dict,
)
from baton_examples.casefile_store import CasefileStore
from baton_examples.casefile_worker import build_worker
from baton_sdk import InvocationContext

pytestmark = pytest.mark.timeout(15)


@pytest.fixture
async def call(store, provider_client):
    """Invokes a method of the example worker and returns the result as a dict."""
    worker = build_worker(store, registry_addr=None)
    await worker.start()
    client = provider_client(worker)

    async def invoke(name, params, *, key="", timeout=5.0):
        reply = await client.invoke(name, params, timeout=timeout,
                                    context=InvocationContext(idempotency_key=key))
        return struct_to_dict(reply.result)

    yield invoke
    await worker.stop()


async def test_casefile_notes_are_added_and_listed_in_order(call):
    created = await call("casefile.create", {"title": "Broken boiler", "description": "cold"})
    casefile_id = created["casefile_id"]
    first = await call("casefile.add_note", {"casefile_id": casefile_id, "text": "called"})
    second = await call("casefile.add_note", {"casefile_id": casefile_id, "text": "fixed"})
    assert (first["note_count"], second["note_count"]) == (1, 2)
    listed = await call("casefile.list_notes", {"casefile_id": casefile_id})
    assert [(n["note_id"], n["text"], n["seq"]) for n in listed["notes"]] == [
        (first["note_id"], "called", 1), (second["note_id"], "fixed", 2)]


async def test_repeated_idempotency_key_returns_the_first_note_without_adding_one(call):
    casefile_id = (await call("casefile.create", {"title": "t"}))["casefile_id"]
    first = await call("casefile.add_note", {"casefile_id": casefile_id, "text": "once"},
                       key="run1/step2")
    retried = await call("casefile.add_note", {"casefile_id": casefile_id, "text": "once"},
                         key="run1/step2")
    other = await call("casefile.add_note", {"casefile_id": casefile_id, "text": "twice"},
                       key="run1/step3")
    assert retried == first == {"note_id": first["note_id"], "note_count": 1}
    assert other["note_count"] == 2
    listed = await call("casefile.list_notes", {"casefile_id": casefile_id})
    assert [n["text"] for n in listed["notes"]] == ["once", "twice"]


async def test_idempotency_key_reused_for_another_casefile_is_refused(call):
    a = (await call("casefile.create", {"title": "a"}))["casefile_id"]
    b = (await call("casefile.create", {"title": "b"}))["casefile_id"]
    await call("casefile.add_note", {"casefile_id": a, "text": "x"}, key="k")
    with pytest.raises(FailedPrecondition):
        await call("casefile.add_note", {"casefile_id": b, "text": "x"}, key="k")


async def test_repeated_idempotency_key_returns_the_first_casefile(call):
    first = await call("casefile.create", {"title": "t"}, key="k-create")
    again = await call("casefile.create", {"title": "t"}, key="k-create")
    assert first == again


async def test_unknown_casefile_is_not_found(call):
    with pytest.raises(NotFound) as caught:
        await call("casefile.add_note", {"casefile_id": "cf_nope", "text": "x"})
    assert caught.value.reason == "CASEFILE_NOT_FOUND"
    with pytest.raises(NotFound):
        await call("casefile.list_notes", {"casefile_id": "cf_nope"})


async def test_bad_casefile_params_list_every_violation(call):
    with pytest.raises(InvalidArgument) as caught:
        await call("casefile.add_note", {"casefile_id": "", "text": ""})
    assert [f for f, _ in caught.value.violations] == ["params.casefile_id", "params.text"]


async def test_a_misspelt_casefile_field_is_refused_not_dropped(call):
    with pytest.raises(InvalidArgument) as caught:
        await call("casefile.create", {"title": "t", "descripton": "typo"})
    assert [f for f, _ in caught.value.violations] == ["params.descripton"]


async def test_notes_survive_a_worker_restart(tmp_path, provider_client):
    store = CasefileStore(tmp_path / "w.db")
    await store.open()
    async with build_worker(store, registry_addr=None) as worker:
        reply = await provider_client(worker).invoke("casefile.create", {"title": "t"})
    await store.close()
    casefile_id = struct_to_dict(reply.result)["casefile_id"]
    store = CasefileStore(tmp_path / "w.db")
    await store.open()
    try:
        async with build_worker(store, registry_addr=None) as worker:
            reply = await provider_client(worker).invoke(
                "casefile.add_note", {"casefile_id": casefile_id, "text": "after restart"})
    finally:
        await store.close()
    assert struct_to_dict(reply.result)["note_count"] == 1


async def test_demo_sleep_sleeps_and_honours_the_deadline(call):
    assert (await call("demo.sleep", {"seconds": 0.01}))["slept"] >= 0.01
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        await call("demo.sleep", {"seconds": 30}, timeout=0.2)
    assert time.monotonic() - started < 2


async def test_demo_fail_reaches_the_caller_with_its_message(call):
    with pytest.raises(Internal) as caught:
        await call("demo.fail", {"message": "boom"})
    assert caught.value.message == "boom"
    assert caught.value.reason == "METHOD_FAILED"
    assert caught.value.metadata == {"exception": "RuntimeError"}
    with pytest.raises(Unavailable) as caught:
        await call("demo.fail", {"message": "try later", "code": "UNAVAILABLE"})
    assert caught.value.message == "try later"


async def test_demo_echo_returns_any_value(call):
    value = {"a": [1, "two", None, {"b": True}], "c": 1.5}
    assert await call("demo.echo", {"value": value}) == {"value": value}
    assert await call("demo.echo", {}) == {"value": None}


def test_every_method_has_a_description_and_tags(store):
    worker = build_worker(store, registry_addr=None)
    names = [d.name for d in worker.definitions]
    assert names == ["casefile.create", "casefile.add_note", "casefile.list_notes",
                     "demo.sleep", "demo.fail", "demo.echo"]
    for definition in worker.definitions:
        assert definition.description and definition.tags, definition.name
