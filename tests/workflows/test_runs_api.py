"""Runs as resources: WatchRun replay-then-live, GetRunLogs, ListRuns, StartRun request ids."""

from __future__ import annotations

import asyncio
import datetime as dt

import grpc
import pytest
from google.protobuf import timestamp_pb2

from baton.orchestrator.v1 import orchestrator_pb2
from baton.orchestrator.v1 import workflows_pb2 as pb
from baton_sdk import WorkflowBuilder

from .conftest import error_details, events_of, start, wait_run

S = pb.RunStep
R = pb.Run


def slow_workflow(name: str = "watched") -> pb.Workflow:
    return (WorkflowBuilder(name).add_step("demo.echo", {"value": 1}, step_id="a")
            .add_step("demo.sleep", {"seconds": 0.6}, step_id="b")
            .add_step("demo.echo", {"value": 2}, step_id="c").build())


async def test_watch_replays_past_events_then_follows_live_ones_to_the_end(stub):
    run = await start(stub, slow_workflow())
    # Wait until step b is in flight, so some events are past and some are still to come.
    async for reply in stub.WatchRun(pb.WatchRunRequest(run_id=run.run_id)):
        if reply.event.step_id == "b" and reply.event.step_status == S.STATUS_RUNNING:
            past = reply.event.sequence
            break
    received = []
    async for reply in stub.WatchRun(pb.WatchRunRequest(run_id=run.run_id)):
        received.append(reply.event)
    sequences = [e.sequence for e in received]
    assert sequences == list(range(1, len(received) + 1))
    assert len(received) > past
    assert received[-1].run_status == R.STATUS_SUCCEEDED and not received[-1].step_id
    assert received[0].run_status == R.STATUS_PENDING
    assert [e.step_id for e in received if e.step_status == S.STATUS_SUCCEEDED] == [
        "a", "b", "c"]


async def test_watch_after_a_sequence_number_skips_what_came_before(stub):
    run = await wait_run(stub, (await start(stub, slow_workflow("after"))).run_id)
    every = await events_of(stub, run.run_id)
    tail = [r.event async for r in stub.WatchRun(pb.WatchRunRequest(
        run_id=run.run_id, after_sequence=every[2].sequence))]
    assert tail == every[3:]


async def test_watch_of_unknown_run_is_not_found(stub):
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for _ in stub.WatchRun(pb.WatchRunRequest(run_id="run_nope")):
            pass
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


async def test_logs_are_the_events_as_lines_in_pages(stub):
    run = await wait_run(stub, (await start(stub, slow_workflow("logged"))).run_id)
    events = await events_of(stub, run.run_id)
    lines, token = [], ""
    while True:
        page = await stub.GetRunLogs(pb.GetRunLogsRequest(run_id=run.run_id, page_size=4,
                                                          page_token=token))
        lines += page.entries
        token = page.next_page_token
        if not token:
            break
    assert [entry.sequence for entry in lines] == [e.sequence for e in events]
    assert "succeeded" in lines[-1].text and lines[-1].text.startswith("run SUCCEEDED")
    failing = WorkflowBuilder("fails").add_step("demo.fail", {"message": "kaput"}, step_id="x")
    failed = await wait_run(stub, (await start(stub, failing.build())).run_id)
    entries = (await stub.GetRunLogs(pb.GetRunLogsRequest(run_id=failed.run_id))).entries
    assert any(e.severity == pb.LogEntry.SEVERITY_ERROR and "kaput" in e.text for e in entries)


async def test_start_run_with_the_same_request_id_starts_one_run(stub, orchestrator):
    request_id = f"start-once-{orchestrator.backend}"
    wf = slow_workflow("once")
    runs = await asyncio.gather(*(start(stub, wf, request_id=request_id) for _ in range(4)))
    assert len({r.run_id for r in runs}) == 1
    await wait_run(stub, runs[0].run_id)
    # The same id for another request is refused: it never hands over the first run.
    for other in ({"input": {"title": "other"}},
                  {"workflow": WorkflowBuilder("not_once").add_step(
                      "demo.echo", {"value": 1}, step_id="a").build()}):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await start(stub, other.pop("workflow", wf), request_id=request_id, **other)
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert error_details(caught.value)[0] == "REQUEST_ID_REUSED"
        assert runs[0].run_id not in caught.value.details()



async def test_keys_and_names_longer_than_their_columns_are_refused_and_nothing_is_stored(
        stub):
    long = "k" * 256
    wf = WorkflowBuilder("keys").add_step("demo.echo", {"value": 1}, step_id="a").build()
    refusals = [
        (start(stub, wf, request_id=long), "request_id"),
        (start(stub, wf, directives=orchestrator_pb2.Directives(idempotency_key=long)),
         "directives.idempotency_key"),
        (start(stub, WorkflowBuilder("n" * 256).add_step(
            "demo.echo", {"value": 1}, step_id="a").build()), "definition.name"),
        (stub.CreateWorkflow(pb.CreateWorkflowRequest(workflow=wf, request_id=long)),
         "request_id"),
    ]
    before = await stub.ListRuns(pb.ListRunsRequest(page_size=1))
    for call, field in refusals:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value
        assert [f for f, _ in error_details(caught.value)[1]] == [field]
    after = await stub.ListRuns(pb.ListRunsRequest(page_size=1))
    assert [r.run_id for r in after.runs] == [r.run_id for r in before.runs]
    # At the limit, all is well.
    run = await start(stub, wf, request_id="k" * 255)
    await wait_run(stub, run.run_id)


async def test_a_repeated_start_of_an_inline_definition_with_defaults_is_the_same_run(
        stub, orchestrator):
    # demo.echo's schema has a default: validating the step once filled it into the
    # shared definition, and the repeat no longer matched the first request.
    for attempt in range(3):
        wf = WorkflowBuilder(f"defaults_{attempt}").add_step("demo.echo", {},
                                                             step_id="a").build()
        request_id = f"inline-defaults-{orchestrator.backend}-{attempt}"
        first = await start(stub, wf, request_id=request_id)
        await wait_run(stub, first.run_id)
        again = await start(stub, wf, request_id=request_id)
        assert again.run_id == first.run_id

async def test_list_runs_filters_by_workflow_status_and_time(stub):
    created = (await stub.CreateWorkflow(pb.CreateWorkflowRequest(workflow=(
        WorkflowBuilder("listed").add_step("demo.echo", {"value": 1}, step_id="a").build()
    )))).workflow
    before = timestamp_pb2.Timestamp()
    before.FromDatetime(dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
    ids = []
    for _ in range(3):
        run = await start(stub, None, workflow_id=created.workflow_id)
        ids.append(run.run_id)
        await wait_run(stub, run.run_id)
    failing = WorkflowBuilder("x").add_step("demo.fail", {}, step_id="f").build()
    await wait_run(stub, (await start(stub, failing)).run_id)

    page1 = await stub.ListRuns(pb.ListRunsRequest(workflow_id=created.workflow_id,
                                                   page_size=2))
    page2 = await stub.ListRuns(pb.ListRunsRequest(workflow_id=created.workflow_id,
                                                   page_size=2,
                                                   page_token=page1.next_page_token))
    listed = [r.run_id for r in page1.runs] + [r.run_id for r in page2.runs]
    assert listed == list(reversed(ids)) and not page2.next_page_token
    assert all(r.step_counts["SUCCEEDED"] == 1 for r in page1.runs)
    failed = await stub.ListRuns(pb.ListRunsRequest(statuses=[R.STATUS_FAILED],
                                                    start_time=before, page_size=500))
    assert failed.runs and all(r.status == R.STATUS_FAILED for r in failed.runs)
    future = timestamp_pb2.Timestamp()
    future.FromDatetime(dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
    later = await stub.ListRuns(pb.ListRunsRequest(start_time=future))
    assert not later.runs


async def test_start_run_needs_exactly_one_source(stub):
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.StartRun(pb.StartRunRequest())
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.StartRun(pb.StartRunRequest(workflow_id="wf_missing"))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    bad = pb.Workflow(steps=[pb.WorkflowStep(step_id="a", method="nope")])
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.StartRun(pb.StartRunRequest(definition=bad))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_listing_runs_by_a_status_number_that_names_none_is_invalid_argument(stub):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ListRuns(pb.ListRunsRequest(statuses=[99]))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_run_input_over_a_mebibyte_is_refused(stub):
    wf = WorkflowBuilder("big_input").add_step("demo.echo", {"value": 1},
                                               step_id="a").build()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await start(stub, wf, input={"blob": "x" * (1024 * 1024 + 1)})
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_details(caught.value)[1][0][0] == "input"


async def test_times_and_durations_out_of_their_range_are_invalid_argument(stub):
    from baton.orchestrator.v1 import orchestrator_pb2

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ListRuns(pb.ListRunsRequest(
            start_time=timestamp_pb2.Timestamp(seconds=253_402_300_800)))  # year 10000
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    wf = WorkflowBuilder("bad_duration").add_step("demo.echo", {"value": 1},
                                                  step_id="a").build()
    wf.steps[0].retry_policy.initial_delay.nanos = 2_000_000_000
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await start(stub, wf)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await start(stub, WorkflowBuilder("bad_timeout").add_step(
            "demo.echo", {"value": 1}, step_id="a").build(),
            directives=orchestrator_pb2.Directives(timeout={"seconds": 5, "nanos": -5}))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_list_filters_naming_no_enum_value_are_invalid_argument(stub, orchestrator):
    from baton.orchestrator.v1 import (
        circuit_breakers_pb2,
        circuit_breakers_pb2_grpc,
        hooks_pb2,
        hooks_pb2_grpc,
        orchestrator_pb2,
        orchestrator_pb2_grpc,
    )

    channel = grpc.aio.insecure_channel(orchestrator.address)
    try:
        calls = (stub.ListWorkflows(pb.ListWorkflowsRequest(status=99)),
                 hooks_pb2_grpc.HookManagerStub(channel).ListHooks(
                     hooks_pb2.ListHooksRequest(stage=99)),
                 circuit_breakers_pb2_grpc.CircuitBreakersStub(channel).ListCircuitBreakers(
                     circuit_breakers_pb2.ListCircuitBreakersRequest(state=99)),
                 orchestrator_pb2_grpc.OrchestratorStub(channel).Dispatch(
                     orchestrator_pb2.DispatchRequest(
                         operation="demo.echo", directives=orchestrator_pb2.Directives(
                             timeout={"seconds": 1, "nanos": -1}))))
        for call in calls:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await call
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    finally:
        await channel.close()
