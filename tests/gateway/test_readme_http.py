"""README "Use it over HTTP": every command, run as written (ports swapped)."""

from __future__ import annotations

import asyncio

import pytest

from ._platform import HAVE_JQ, NO_JQ, json_values, readme_blocks, run_blocks

pytestmark = pytest.mark.skipif(not HAVE_JQ, reason=NO_JQ)


async def test_the_http_section_of_the_readme_works_as_written(running):
    blocks = readme_blocks("Use it over HTTP")
    assert len(blocks) == 5, "update this test together with the README"

    register, dispatch, workflow, sessions, error = await asyncio.to_thread(
        run_blocks, blocks, running)

    created, got, listed = json_values(register)
    assert created["method"]["name"] == got["method"]["name"] == "billing.refund"
    assert got["method"]["input_schema"]["required"] == ["invoice_id"]
    assert "casefile.create" in [m["name"] for m in listed["methods"]]

    (dispatched,) = json_values(dispatch)
    assert dispatched["result"]["casefile_id"].startswith("cf_")

    created, *events, steps = json_values(workflow)
    assert created["workflow"]["workflow_id"] == "casefile_setup"
    assert events[-1]["event"]["run_status"] == "STATUS_SUCCEEDED"
    assert [s["status"] for s in steps["steps"]] == ["STATUS_SUCCEEDED"] * 2

    dispatched, context, history, policies = json_values(sessions)
    assert context["context"]["values"] == {"priority": "high"}
    assert [e["execution_id"] for e in history["executions"]] == [
        dispatched["metadata"]["execution_id"]]
    assert "default" in [p["name"] for p in policies["policies"]]

    head, _, body = error.partition("\n\n")
    assert head.startswith("HTTP/1.1 404 Not Found")
    assert "content-type: application/json" in head
    assert json_values(body)[0]["code"] == 5
