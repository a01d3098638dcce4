"""Workflow definitions as resources: create, read, list, version, delete, validate."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import field_mask_pb2

from baton.orchestrator.v1 import workflows_pb2 as pb
from baton_sdk import WorkflowBuilder, load_workflow

from .conftest import error_details, run_to_end


def casefile_setup(name: str = "casefile_setup") -> pb.Workflow:
    return (WorkflowBuilder(name, description="Creates a casefile with a first note")
            .add_step("casefile.create", params={"title": "${input.title}"}, step_id="create")
            .add_step("casefile.add_note", step_id="note", depends_on=["create"],
                      params={"casefile_id": "${steps.create.casefile_id}", "text": "opened"})
            .with_execution_mode("dag").with_error_handling("stop_on_failure")
            .with_timeout(60).with_metadata(team="docs").build())


async def create(stub, workflow: pb.Workflow, **fields) -> pb.Workflow:
    return (await stub.CreateWorkflow(pb.CreateWorkflowRequest(workflow=workflow,
                                                               **fields))).workflow


async def test_created_workflow_reads_back_as_version_1(stub):
    created = await create(stub, casefile_setup())
    assert created.workflow_id.startswith("wf_") and created.version == 1
    assert created.status == pb.Workflow.STATUS_ACTIVE
    got = (await stub.GetWorkflow(pb.GetWorkflowRequest(workflow_id=created.workflow_id))).workflow
    assert got == created
    assert [s.step_id for s in got.steps] == ["create", "note"]
    assert got.execution_mode == pb.Workflow.EXECUTION_MODE_DAG
    assert got.timeout.seconds == 60 and got.metadata["team"] == "docs"


async def test_repeated_request_id_creates_one_workflow(stub):
    first = await create(stub, casefile_setup("dedupe"), request_id="req-wf-1")
    second = await create(stub, casefile_setup("dedupe"), request_id="req-wf-1")
    assert first.workflow_id == second.workflow_id


async def test_caller_chosen_id_is_kept_and_cannot_be_reused(stub, orchestrator):
    wid = f"setup-{orchestrator.backend}"
    workflow = casefile_setup()
    workflow.workflow_id = wid
    assert (await create(stub, workflow)).workflow_id == wid
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await create(stub, workflow)
    assert info.value.code() == grpc.StatusCode.ALREADY_EXISTS


async def test_update_makes_a_new_version_and_runs_keep_theirs(stub):
    created = await create(stub, casefile_setup("versioned"))
    changed = pb.Workflow(workflow_id=created.workflow_id, description="v2",
                          etag=created.etag)
    updated = (await stub.UpdateWorkflow(pb.UpdateWorkflowRequest(
        workflow=changed,
        update_mask=field_mask_pb2.FieldMask(paths=["description"])))).workflow
    assert updated.version == 2 and updated.description == "v2"
    assert [s.step_id for s in updated.steps] == ["create", "note"]
    changed.etag = updated.etag
    same = (await stub.UpdateWorkflow(pb.UpdateWorkflowRequest(  # changes nothing
        workflow=changed, update_mask=field_mask_pb2.FieldMask(paths=["description"])))).workflow
    assert (same.version, same.etag) == (2, updated.etag)
    v1 = (await stub.GetWorkflow(pb.GetWorkflowRequest(workflow_id=created.workflow_id,
                                                       version=1))).workflow
    assert v1.description == "Creates a casefile with a first note"
    versions = (await stub.ListWorkflowVersions(pb.ListWorkflowVersionsRequest(
        workflow_id=created.workflow_id, page_size=1)))
    assert [w.version for w in versions.workflows] == [2] and versions.next_page_token
    older = await stub.ListWorkflowVersions(pb.ListWorkflowVersionsRequest(
        workflow_id=created.workflow_id, page_token=versions.next_page_token))
    assert [w.version for w in older.workflows] == [1] and not older.next_page_token

    run, _ = await run_to_end(stub, None, workflow_id=created.workflow_id, workflow_version=1,
                              input={"title": "t"})
    assert run.workflow_version == 1 and run.definition.description != "v2"
    latest, _ = await run_to_end(stub, None, workflow_id=created.workflow_id,
                                 input={"title": "t"})
    assert latest.workflow_version == 2 and latest.status == pb.Run.STATUS_SUCCEEDED


async def test_a_version_that_is_not_there_or_negative_is_refused(stub):
    created = await create(stub, casefile_setup("one_version"))
    for call in (stub.GetWorkflow(pb.GetWorkflowRequest(workflow_id=created.workflow_id,
                                                        version=9)),
                 stub.StartRun(pb.StartRunRequest(workflow_id=created.workflow_id,
                                                  workflow_version=9))):
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await call
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        assert f"workflow {created.workflow_id} version 9 does not exist" in missing.value.details()
    for call, field in ((stub.GetWorkflow(pb.GetWorkflowRequest(
            workflow_id=created.workflow_id, version=-1)), "version"),
            (stub.StartRun(pb.StartRunRequest(workflow_id=created.workflow_id,
                                              workflow_version=-1)), "workflow_version")):
        with pytest.raises(grpc.aio.AioRpcError) as negative:
            await call
        assert negative.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert [f for f, _ in error_details(negative.value)[1]] == [field]
    runs = await stub.ListRuns(pb.ListRunsRequest(workflow_id=created.workflow_id))
    assert list(runs.runs) == []  # nothing was started


async def test_stale_etag_is_refused(stub):
    created = await create(stub, casefile_setup("etag"))
    await stub.UpdateWorkflow(pb.UpdateWorkflowRequest(
        workflow=pb.Workflow(workflow_id=created.workflow_id, description="x",
                             etag=created.etag),
        update_mask=field_mask_pb2.FieldMask(paths=["description"])))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.UpdateWorkflow(pb.UpdateWorkflowRequest(
            workflow=pb.Workflow(workflow_id=created.workflow_id, description="y",
                                 etag=created.etag),
            update_mask=field_mask_pb2.FieldMask(paths=["description"])))
    assert info.value.code() == grpc.StatusCode.ABORTED


async def test_deleted_workflow_is_listed_apart_and_cannot_start(stub, orchestrator):
    name = f"doomed-{orchestrator.backend}"
    created = await create(stub, casefile_setup(name))
    deleted = (await stub.DeleteWorkflow(pb.DeleteWorkflowRequest(
        workflow_id=created.workflow_id))).workflow
    assert deleted.status == pb.Workflow.STATUS_DELETED and deleted.HasField("delete_time")
    active = await stub.ListWorkflows(pb.ListWorkflowsRequest(name=name))
    assert not active.workflows
    gone = await stub.ListWorkflows(pb.ListWorkflowsRequest(
        name=name, status=pb.Workflow.STATUS_DELETED))
    assert [w.workflow_id for w in gone.workflows] == [created.workflow_id]
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.StartRun(pb.StartRunRequest(workflow_id=created.workflow_id))
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_list_workflows_pages_and_filters_by_name(stub, orchestrator):
    name = f"paged-{orchestrator.backend}"
    ids = [(await create(stub, casefile_setup(name))).workflow_id for _ in range(3)]
    seen, token = [], ""
    while True:
        page = await stub.ListWorkflows(pb.ListWorkflowsRequest(name=name, page_size=2,
                                                                page_token=token))
        seen += [w.workflow_id for w in page.workflows]
        token = page.next_page_token
        if not token:
            break
    assert seen == ids


async def test_invalid_definition_lists_every_problem(stub):
    bad = pb.Workflow(name="broken", steps=[
        pb.WorkflowStep(step_id="a", method="casefile.create"),            # title missing
        pb.WorkflowStep(step_id="a", method="demo.echo"),                  # duplicate id
        pb.WorkflowStep(step_id="c", method="no.such.method"),             # unknown method
        pb.WorkflowStep(step_id="d", method="demo.echo", depends_on=["ghost"]),
        pb.WorkflowStep(step_id="e", method="demo.echo", depends_on=["f"]),
        pb.WorkflowStep(step_id="f", method="demo.echo", depends_on=["e"]),
    ])
    bad.steps[2].params.update({"x": "${steps.nowhere.out}"})
    bad.steps[0].params.update({"description": 5})
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await create(stub, bad)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    reason, violations = error_details(info.value)
    fields = {f for f, _ in violations}
    assert reason == "INVALID_WORKFLOW"
    assert "workflow.steps[0].params.title" in fields
    assert "workflow.steps[0].params.description" in fields
    assert "workflow.steps[1].step_id" in fields
    assert "workflow.steps[2].method" in fields
    assert "workflow.steps[3].depends_on[0]" in fields
    assert any("cycle" in d for _, d in violations)
    assert any("nowhere" in d for _, d in violations)


async def test_params_with_references_are_checked_only_where_literal(stub):
    wf = (WorkflowBuilder("refs").add_step("casefile.create", {"title": "${input.title}"},
                                           step_id="a")
          .add_step("casefile.add_note", {"casefile_id": "${steps.a.casefile_id}", "text": 7},
                    step_id="b", depends_on=["a"]).with_execution_mode("dag").build())
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await create(stub, wf)
    _, violations = error_details(info.value)
    assert [f for f, _ in violations] == ["workflow.steps[1].params.text"]


async def test_reference_to_a_step_that_is_not_a_dependency_is_refused(stub):
    wf = (WorkflowBuilder("race").add_step("demo.echo", {"value": 1}, step_id="a")
          .add_step("demo.echo", {"value": "${steps.a.value}"}, step_id="b")
          .with_execution_mode("parallel").build())
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await create(stub, wf)
    _, violations = error_details(info.value)
    assert violations and "depends_on" in violations[0][1]



async def test_a_sequential_reference_to_a_step_that_runs_later_is_refused(stub):
    # a waits for c, so b runs before a: b cannot read a's output, although a comes
    # first in the file. Validation judges by the order the run will take.
    wf = (WorkflowBuilder("later").add_step("demo.echo", {"value": 1}, step_id="a",
                                            depends_on=["c"])
          .add_step("demo.echo", {"value": "${steps.a.value}"}, step_id="b")
          .add_step("demo.echo", {"value": 3}, step_id="c").build())
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await create(stub, wf)
    _, violations = error_details(info.value)
    assert [field for field, _ in violations] == ["workflow.steps[1].params"]
    assert "depends_on" in violations[0][1]

async def test_yaml_examples_are_valid(stub):
    from pathlib import Path
    folder = Path(__file__).parents[2] / "examples" / "workflows"
    files = sorted(folder.glob("*.yaml"))
    assert files
    for path in files:
        await create(stub, load_workflow(path))


async def test_numbers_json_cannot_hold_are_refused_in_definitions_and_input(stub):
    from .conftest import start

    bad = WorkflowBuilder("nan").add_step("demo.echo", {"value": 1}, step_id="a").build()
    bad.steps[0].params.update({"value": float("nan")})  # the builder itself refuses NaN
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await create(stub, bad)
    assert error_details(info.value)[1] == [("workflow.steps[0].params.value",
                                             "nan is not a JSON number")]
    fine = WorkflowBuilder("inf_input").add_step("demo.echo", {"value": 1},
                                                 step_id="a").build()
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await start(stub, fine, input={"n": float("inf")})
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_details(info.value)[1] == [("input.n", "inf is not a JSON number")]


async def test_long_chains_and_dense_graphs_validate(stub):
    # A chain as long as allowed (the cycle check walked it recursively) and a graph
    # where every step depends on every earlier one (the checks were cubic in it).
    chain = WorkflowBuilder("chain").with_execution_mode("dag")
    for i in range(1000):
        chain.add_step("demo.echo", {"value": i}, step_id=f"s{i}",
                       depends_on=[f"s{i - 1}"] if i else [])
    assert (await create(stub, chain.build())).version == 1
    dense = WorkflowBuilder("dense").with_execution_mode("dag")
    for i in range(150):
        dense.add_step("demo.echo", {"value": f"${{steps.d{i - 1}.value}}" if i else 0},
                       step_id=f"d{i}", depends_on=[f"d{j}" for j in range(i)])
    assert (await create(stub, dense.build())).version == 1
    too_many = WorkflowBuilder("too_many")
    for i in range(1001):
        too_many.add_step("demo.echo", {"value": i}, step_id=f"t{i}")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await create(stub, too_many.build())
    assert error_details(info.value)[1] == [("workflow.steps", "must hold at most 1000 steps")]


async def test_an_update_without_a_mask_changes_only_the_fields_it_sets(stub, orchestrator):
    workflow = casefile_setup(f"implied-{orchestrator.backend}")
    workflow.metadata["team"] = "ops"
    created = await create(stub, workflow)
    updated = (await stub.UpdateWorkflow(pb.UpdateWorkflowRequest(workflow=pb.Workflow(
        workflow_id=created.workflow_id, description="only this")))).workflow
    assert (updated.version, updated.description) == (2, "only this")
    # What the request left unset is kept, as AIP-134 has it for an update without a mask.
    assert [s.step_id for s in updated.steps] == ["create", "note"]
    assert dict(updated.metadata) == {"team": "ops"} and updated.name == created.name

    whole = pb.Workflow()
    whole.CopyFrom(updated)
    whole.ClearField("metadata")
    replaced = (await stub.UpdateWorkflow(pb.UpdateWorkflowRequest(
        workflow=whole, update_mask=field_mask_pb2.FieldMask(paths=["*"])))).workflow
    assert replaced.version == 3 and dict(replaced.metadata) == {}  # "*": the whole of it

    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.UpdateWorkflow(pb.UpdateWorkflowRequest(
            workflow=pb.Workflow(workflow_id=created.workflow_id)))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    reason, violations = error_details(info.value)
    assert reason == "INVALID_MASK" and [f for f, _ in violations] == ["update_mask"]
