"""README "Debug with grpcurl": every command, run as written (ports swapped)."""

from __future__ import annotations

import asyncio

import pytest
from gateway._platform import HAVE_JQ, NO_JQ, json_values, readme_blocks, run_blocks

pytestmark = pytest.mark.skipif(not HAVE_JQ, reason=NO_JQ)


async def test_the_grpcurl_section_of_the_readme_works_as_written(running):
    blocks = readme_blocks("Debug with grpcurl")
    assert len(blocks) == 5, "update this test together with the README"

    listing, health, calls, run, protoset = await asyncio.to_thread(run_blocks, blocks, running)

    for service in ("baton.registry.v1.MethodRegistry", "baton.orchestrator.v1.Workflows",
                    "baton.sessions.v1.SessionOrchestrator", "baton.provider.v1.MethodProvider"):
        assert service in listing
    assert "baton.orchestrator.v1.Workflows is a service:" in listing
    assert "baton.orchestrator.v1.StartRunRequest is a message:" in listing

    assert json_values(health) == [{"status": "SERVING"}] * 2

    dispatched, method, session = json_values(calls)
    assert dispatched["result"]["casefile_id"].startswith("cf_")
    assert method["method"]["name"] == "casefile.create"
    assert session["session"]["user_id"] == "bob"

    events = json_values(run)
    assert events[-1]["event"]["run_status"] == "STATUS_SUCCEEDED"

    assert "baton.orchestrator.v1.Orchestrator.Dispatch is a method:" in protoset
    assert '"name": "casefile.create"' in protoset
