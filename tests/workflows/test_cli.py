"""`baton run`, `baton runs ...` and `baton workflows ...` against a real orchestrator."""

from __future__ import annotations

import asyncio
import io
import json
import signal
import sys
import uuid
from pathlib import Path

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from rich.console import Console
from typer.testing import CliRunner

from baton.orchestrator.v1 import workflows_pb2 as pb
from baton.orchestrator.v1 import workflows_pb2_grpc
from baton_cli import _workflows
from baton_cli._run_view import RunView
from baton_cli.main import app
from baton_sdk import WorkflowBuilder

from .conftest import run_named, wait_run

EXAMPLES = Path(__file__).parents[2] / "examples" / "workflows"


async def baton(orchestrator, *args: str):
    """Runs the CLI in a thread (it makes blocking calls to our in-process server)."""
    runner = CliRunner()
    return await asyncio.to_thread(runner.invoke, app,
                                   [*args, "--orchestrator", orchestrator.address])


async def test_run_shows_the_steps_and_exits_0_on_success(orchestrator):
    result = await baton(orchestrator, "run", str(EXAMPLES / "casefile_setup.yaml"),
                         "--input", json.dumps({"title": "From the CLI"}))
    assert result.exit_code == 0, result.output
    for text in ("create", "summary_note", "contacts_note", "notes", "SUCCEEDED",
                 "4/4 steps done"):
        assert text in result.output
    # Into a pipe (not a terminal, e.g. a CI log): a line per event as it happens,
    # then the final table, its last line ended.
    lines = result.output.splitlines()
    said = [line.split(" ", 1)[1] for line in lines if line[:2].isdigit() and ":" in line[:3]]
    assert said[0] == "run PENDING: run created" and said[-1].startswith("run SUCCEEDED")
    assert [line for line in said if line.startswith("step create ")] == [
        "step create RUNNING: attempt 1", "step create SUCCEEDED: succeeded"]
    assert result.output.endswith("4/4 steps done\n")
    assert result.output.index("step create SUCCEEDED") < result.output.index("┏")


async def test_run_exits_1_when_the_run_fails_and_retry_resumes_it(orchestrator):
    result = await baton(orchestrator, "run", str(EXAMPLES / "flaky_retry.yaml"))
    assert result.exit_code == 1, result.output
    assert "run FAILED" in result.output and "UNAVAILABLE" in result.output
    run_id = next(word for word in result.output.split() if word.startswith("run_"))
    retried = await baton(orchestrator, "runs", "retry", run_id)
    assert retried.exit_code == 1 and "run FAILED" in retried.output
    logs = await baton(orchestrator, "runs", "logs", run_id)
    assert "retry #1 requested" in logs.output and "ERROR" in logs.output


async def test_parallel_fan_out_example_succeeds(orchestrator):
    result = await baton(orchestrator, "run", str(EXAMPLES / "fan_out.yaml"))
    assert result.exit_code == 0, result.output
    assert "6/6 steps done" in result.output


async def test_workflows_apply_creates_then_versions(orchestrator, tmp_path):
    source = (EXAMPLES / "casefile_setup.yaml").read_text()
    path = tmp_path / "wf.yaml"
    path.write_text(source.replace("name: casefile_setup",
                                   f"name: cli_setup_{orchestrator.backend}"))
    first = await baton(orchestrator, "workflows", "apply", str(path))
    assert first.exit_code == 0 and first.output.strip().endswith("version 1"), first.output
    same = await baton(orchestrator, "workflows", "apply", str(path))  # nothing changed
    assert same.output.strip() == first.output.strip(), same.output
    path.write_text(path.read_text().replace("\ndescription: ", "\ndescription: Changed. ", 1))
    second = await baton(orchestrator, "workflows", "apply", str(path))
    assert second.output.strip().endswith("version 2"), second.output
    workflow_id = first.output.split()[0]
    listed = await baton(orchestrator, "workflows", "list", "--name",
                         f"cli_setup_{orchestrator.backend}")
    assert workflow_id in listed.output
    none = await baton(orchestrator, "workflows", "list", "--name", "no_such_workflow_name")
    assert none.exit_code == 0 and none.output.strip() == "no workflows match", none.output
    got = await baton(orchestrator, "workflows", "get", workflow_id, "--version", "1")
    assert json.loads(got.output)["version"] == 1
    by_name = await baton(orchestrator, "workflows", "get", f"cli_setup_{orchestrator.backend}")
    assert by_name.exit_code == 0, by_name.output
    assert (json.loads(by_name.output)["workflow_id"], json.loads(by_name.output)["version"]) \
        == (workflow_id, 2)
    ran = await baton(orchestrator, "run", "--workflow", f"cli_setup_{orchestrator.backend}",
                      "--version", "1", "--input", json.dumps({"title": "Stored"}))
    assert ran.exit_code == 0 and "4/4 steps done" in ran.output, ran.output
    for args in ([], [str(path), "--workflow", workflow_id]):
        wrong = await baton(orchestrator, "run", *args)
        assert wrong.exit_code == 2 and "give a workflow FILE or --workflow" in wrong.output


async def test_runs_list_get_and_errors(orchestrator):
    started = await baton(orchestrator, "run", str(EXAMPLES / "fan_out.yaml"), "--detach")
    run_id = started.output.strip()
    watched = await baton(orchestrator, "runs", "watch", run_id)
    assert watched.exit_code == 0
    listed = await baton(orchestrator, "runs", "list", "--status", "succeeded,failed",
                         "--limit", "200")
    assert run_id in listed.output
    first = await baton(orchestrator, "runs", "list", "--limit", "1")
    assert first.exit_code == 0 and "more: --page-token " in first.output, first.output
    token = first.output.rsplit("--page-token ", 1)[1].strip()
    following = await baton(orchestrator, "runs", "list", "--limit", "1", "--page-token", token)
    assert following.exit_code == 0
    first_id = next(w for w in first.output.split() if w.startswith("run_"))
    assert first_id not in following.output
    none = await baton(orchestrator, "runs", "list", "--status", "partial", "--since",
                       "2999-01-01")
    assert none.exit_code == 0 and none.output.strip() == "no runs match"
    got = await baton(orchestrator, "runs", "get", run_id)
    assert got.exit_code == 0, got.output
    shown = json.loads(got.output)  # one JSON document
    assert shown["run"]["run_id"] == run_id and len(shown["steps"]) == 6
    cancel = await baton(orchestrator, "runs", "cancel", run_id)
    assert cancel.exit_code == 2 and "FAILED_PRECONDITION" in cancel.output
    assert "only a PENDING or RUNNING run can be cancelled" in cancel.output


async def test_runs_cancel_and_retry_again_with_the_same_request_id_repeat_nothing(
        orchestrator, stub):
    nap = WorkflowBuilder(f"cli_nap_{orchestrator.backend}").add_step(
        "demo.sleep", {"seconds": 30}, step_id="nap").build()
    run_id = (await stub.StartRun(pb.StartRunRequest(definition=nap))).run.run_id
    while (await stub.GetRun(pb.GetRunRequest(run_id=run_id))).run.status \
            != pb.Run.STATUS_RUNNING:
        await asyncio.sleep(0.05)
    ids = {op: f"cli-{op}-{uuid.uuid4().hex}" for op in ("cancel", "retry")}
    for _ in range(2):  # a script running the command again after a lost answer
        cancelled = await baton(orchestrator, "runs", "cancel", run_id,
                                "--request-id", ids["cancel"])
        assert cancelled.exit_code == 0 and cancelled.output == f"{run_id} CANCELLED\n"
    for _ in range(2):
        retried = await baton(orchestrator, "runs", "retry", run_id, "--no-watch",
                              "--request-id", ids["retry"])
        assert retried.exit_code == 0, retried.output
    assert (await stub.GetRun(pb.GetRunRequest(run_id=run_id))).run.retry_count == 1
    cancelled = await baton(orchestrator, "runs", "cancel", run_id)  # a new request_id
    assert cancelled.exit_code == 0 and cancelled.output == f"{run_id} CANCELLED\n"
    again = await baton(orchestrator, "runs", "cancel", run_id)
    assert again.exit_code == 2 and "only a PENDING or RUNNING run can be cancelled" \
        in again.output


def test_run_of_a_missing_file_that_names_a_workflow_says_how_to_run_that(tmp_path,
                                                                          monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    named = runner.invoke(app, ["run", "flaky_retry", "--orchestrator", "127.0.0.1:1"])
    assert named.exit_code == 2
    text = " ".join(named.output.replace("│", " ").split())
    assert "file 'flaky_retry' does not exist; to run the stored workflow 'flaky_retry': " \
           "baton run --workflow flaky_retry" in text, named.output
    a_path = runner.invoke(app, ["run", "flows/setup.yaml", "--orchestrator", "127.0.0.1:1"])
    assert a_path.exit_code == 2
    text = " ".join(a_path.output.replace("│", " ").split())
    assert "file 'flows/setup.yaml' does not exist" in text and "--workflow" not in text


def test_a_retried_run_shows_its_new_state_not_the_old_failure():
    def at(seconds: float) -> Timestamp:
        return Timestamp(seconds=1_000 + int(seconds), nanos=int(seconds % 1 * 1e9))

    run = pb.Run(run_id="run_1", workflow_name="wf", definition=pb.Workflow(
        steps=[pb.WorkflowStep(step_id="a", method="demo.echo")]))
    view = RunView(run)
    failed = pb.RunError(code="FAILED_PRECONDITION",
                         message="unresolved reference ${context.priority}")
    for event in (
            pb.RunEvent(step_id="a", step_status=pb.RunStep.STATUS_RUNNING, attempt=1,
                        create_time=at(0)),
            pb.RunEvent(step_id="a", step_status=pb.RunStep.STATUS_FAILED, attempt=1,
                        create_time=at(0.5)),
            pb.RunEvent(run_status=pb.Run.STATUS_FAILED, error=failed, create_time=at(0.6)),
            # RetryRun a minute later: the step runs again and the run succeeds.
            pb.RunEvent(run_status=pb.Run.STATUS_PENDING, create_time=at(60)),
            pb.RunEvent(step_id="a", step_status=pb.RunStep.STATUS_RUNNING, attempt=2,
                        create_time=at(60.1)),
            pb.RunEvent(step_id="a", step_status=pb.RunStep.STATUS_SUCCEEDED, attempt=2,
                        create_time=at(60.3)),
            pb.RunEvent(run_status=pb.Run.STATUS_SUCCEEDED, create_time=at(60.4))):
        view.apply(event)
    out = Console(file=io.StringIO(), width=120)
    out.print(view)
    shown = out.file.getvalue()
    assert "run SUCCEEDED" in shown and "unresolved reference" not in shown
    assert "0.20s" in shown  # the retried attempt's time, not the minute between


async def test_ctrl_c_stops_watching_not_the_run_and_says_how_to_go_on(orchestrator, tmp_path):
    name = f"cli_ctrl_c_{orchestrator.backend}"
    path = tmp_path / "slow.yaml"
    path.write_text(f"name: {name}\nsteps:\n"
                    "  - {step_id: nap, method: demo.sleep, params: {seconds: 2}}\n")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "baton_cli", "run", str(path),
        "--orchestrator", orchestrator.address,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stub = orchestrator.stub
    run_id = (await run_named(stub, name)).run_id
    await asyncio.sleep(0.3)  # the CLI is watching by now
    proc.send_signal(signal.SIGINT)
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 130
    assert f"stopped watching; run {run_id} goes on" in err.decode()
    assert f"baton runs cancel {run_id}" in err.decode()
    assert (await wait_run(stub, run_id)).status == pb.Run.STATUS_SUCCEEDED


async def test_runs_of_a_deleted_workflow_are_listed_by_its_name(orchestrator, stub):
    from baton.orchestrator.v1 import workflows_pb2 as pb
    from baton_sdk import WorkflowBuilder

    name = f"cli_gone_{orchestrator.backend}"
    created = (await stub.CreateWorkflow(pb.CreateWorkflowRequest(
        workflow=WorkflowBuilder(name).add_step("demo.echo", {"value": 1},
                                                step_id="a").build()))).workflow
    run = (await stub.StartRun(pb.StartRunRequest(workflow_id=created.workflow_id))).run
    await wait_run(stub, run.run_id)
    await stub.DeleteWorkflow(pb.DeleteWorkflowRequest(workflow_id=created.workflow_id))

    listed = await baton(orchestrator, "runs", "list", "--workflow", name)

    assert listed.exit_code == 0, listed.output
    assert run.run_id in listed.output


async def test_apply_refuses_a_name_several_workflows_share_and_changes_none(orchestrator,
                                                                            stub, tmp_path):
    name = f"cli_twins_{orchestrator.backend}"
    twins = [(await stub.CreateWorkflow(pb.CreateWorkflowRequest(
        workflow=WorkflowBuilder(name).add_step("demo.echo", {"value": n},
                                                step_id="a").build()))).workflow
        for n in (1, 2)]
    path = tmp_path / "twin.yaml"
    path.write_text(f"name: {name}\nsteps:\n"
                    "  - {step_id: a, method: demo.echo, params: {value: 3}}\n")

    applied = await baton(orchestrator, "workflows", "apply", str(path))

    assert applied.exit_code == 2, applied.output
    said = " ".join(applied.output.replace("│", " ").split())
    assert f"several workflows are named '{name}'" in said and "nothing was written" in said
    for twin in twins:
        stored = (await stub.GetWorkflow(pb.GetWorkflowRequest(
            workflow_id=twin.workflow_id))).workflow
        assert stored.version == 1


async def test_ctrl_c_before_the_first_event_still_names_the_run_that_goes_on(
        orchestrator, tmp_path, monkeypatch):
    class CtrlCOnGetRun:
        """The real stub, with Ctrl-C pressed while GetRun waits for its reply."""

        def __init__(self, stub):
            self._stub = stub

        def __getattr__(self, name):
            return getattr(self._stub, name)

        def GetRun(self, request, **kwargs):  # noqa: N802 - the RPC's name
            raise KeyboardInterrupt

    channel = grpc.insecure_channel(orchestrator.address)
    monkeypatch.setattr(_workflows, "_stub", lambda _address: CtrlCOnGetRun(
        workflows_pb2_grpc.WorkflowsStub(channel)))
    name = f"cli_early_ctrl_c_{orchestrator.backend}"
    path = tmp_path / "early.yaml"
    path.write_text(f"name: {name}\nsteps:\n"
                    "  - {step_id: a, method: demo.echo, params: {value: 1}}\n")
    try:
        result = await baton(orchestrator, "run", str(path))
    finally:
        channel.close()

    assert result.exit_code == 130, result.output
    assert "stopped watching; run run_" in result.output, result.output
    run_id = result.output.split("stopped watching; run ", 1)[1].split()[0]
    ended = await wait_run(orchestrator.stub, run_id)
    assert (ended.workflow_name, ended.status) == (name, pb.Run.STATUS_SUCCEEDED)


async def test_a_token_no_header_can_carry_is_one_line_and_exit_2(orchestrator):
    # A token pasted with a line break: gRPC refused it mid-call (INTERNAL, and a
    # core log line on stderr).
    runner = CliRunner()
    result = await asyncio.to_thread(
        runner.invoke, app, ["runs", "list", "--orchestrator", orchestrator.address],
        env={"BATON_TOKEN": "eyJhbGciOi\nJIUzI1NiJ9"})
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: $BATON_TOKEN holds a line break"), result.output
    assert "INTERNAL" not in result.output
