"""After a burst of runs the idle engine hands free memory back to the system."""

from __future__ import annotations

import asyncio

from baton.orchestrator.v1 import workflows_pb2 as pb
from baton_orchestrator.workflows import _engine, _memory
from baton_sdk import WorkflowBuilder

from .conftest import start, wait_run


def test_release_free_memory_trims_the_heap_on_glibc():
    assert _memory.release_free_memory() is True


async def test_the_engine_trims_once_after_a_burst_has_ended(stub, monkeypatch):
    trims = []

    def release() -> bool:
        trims.append(True)
        return _memory.release_free_memory()

    monkeypatch.setattr(_engine, "BURST", 4)
    monkeypatch.setattr(_engine, "IDLE_DELAY", 0.05)
    monkeypatch.setattr(_engine, "release_free_memory", release)
    wf = WorkflowBuilder("burst").add_step("demo.sleep", {"seconds": 0.2}, step_id="nap")
    runs = await asyncio.gather(*(start(stub, wf.build()) for _ in range(6)))
    assert not trims  # runs are still in flight
    ended = await asyncio.gather(*(wait_run(stub, r.run_id) for r in runs))
    assert {r.status for r in ended} == {pb.Run.STATUS_SUCCEEDED}
    await asyncio.sleep(0.5)
    assert trims == [True]
