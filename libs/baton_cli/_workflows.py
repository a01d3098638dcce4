"""`baton run`, `baton runs ...`, `baton workflows ...`: workflows from the command line."""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import typer
from google.protobuf import field_mask_pb2
from rich.table import Column, Table
from rich.text import Text

from baton.orchestrator.v1 import workflows_pb2 as pb
from baton.orchestrator.v1 import workflows_pb2_grpc
from baton_core import constants as c
from baton_core import dict_to_struct, from_rpc_error
from baton_sdk import load_workflow

from ._auth_commands import authorized_channel
from ._commands import ORCHESTRATOR_OPTION, fail, parse_json, service_address, show
from ._run_view import STYLES, RunView, console, follow, status_name

runs_app = typer.Typer(help="Workflow runs.", no_args_is_help=True)
workflows_app = typer.Typer(help="Workflow definitions.", no_args_is_help=True)

_RUN_STATUSES = [n.removeprefix("STATUS_") for n in pb.Run.Status.keys()][1:]


def _stub(address: str | None) -> workflows_pb2_grpc.WorkflowsStub:
    target = service_address(c.ENV_ORCHESTRATOR_ADDR, c.ORCHESTRATOR_PORT, address)
    return workflows_pb2_grpc.WorkflowsStub(authorized_channel(target))


def _errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turns an RPC failure into a readable error and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except grpc.RpcError as exc:
            try:
                fail(from_rpc_error(exc))
            except typer.Exit:
                raise typer.Exit(2) from None
    return wrapper


def _exit_for(view: RunView) -> None:
    raise typer.Exit(0 if view.status == "SUCCEEDED" else 1)


@_errors
def run(
    file: Path | None = typer.Argument(None, dir_okay=False,
                                       help="Workflow definition (YAML or JSON)."),
    workflow: str = typer.Option("", "--workflow", "-w", help="Run a stored workflow (its id "
                                 "or name, see `workflows apply`) instead of a file."),
    version: int = typer.Option(0, "--version", min=0, max=2**31 - 1,
                                help="With --workflow: the version "
                                "(0: the latest)."),
    input: str = typer.Option("{}", "--input", "-i", help="Run input as a JSON object."),
    session: str = typer.Option("", "--session", help="Session to run the steps in."),
    detach: bool = typer.Option(False, "--detach", "-d", help="Print the run id and return."),
    orchestrator: str = ORCHESTRATOR_OPTION,
) -> None:
    """Run a workflow file (or a stored workflow) and show its steps live.

    Exits 0 only when the run succeeds; Ctrl-C stops watching, not the run."""
    if (file is None) == (not workflow):
        raise typer.BadParameter("give a workflow FILE or --workflow ID|NAME, not both "
                                 "and not neither")
    if file is not None and not file.exists():
        hint = (f"; to run the stored workflow {file.name!r}: baton run --workflow {file.name}"
                if file.name == str(file) and not file.suffix else "")
        raise typer.BadParameter(f"file {str(file)!r} does not exist{hint}",
                                 param_hint="'file'")
    request = pb.StartRunRequest(input=dict_to_struct(parse_json(input, "--input")),
                                 session_id=session, request_id=uuid.uuid4().hex)
    stub = _stub(orchestrator)
    if file is not None:
        try:
            request.definition.CopyFrom(load_workflow(file))
        except (ValueError, OSError) as exc:
            raise typer.BadParameter(str(exc)) from exc
    else:
        request.workflow_id, request.workflow_version = _workflow_id(stub, workflow), version
    try:
        started = stub.StartRun(request).run
    except KeyboardInterrupt:
        typer.echo("\ninterrupted: the run may have started (baton runs list shows it)",
                   err=True)
        raise typer.Exit(130) from None
    if detach:
        typer.echo(started.run_id)
        return
    _exit_for(follow(stub, started.run_id))


@runs_app.command("list")
@_errors
def runs_list(
    workflow: str = typer.Option("", "--workflow",
                                 help="Only runs of this stored workflow (its id or name)."),
    status: list[str] = typer.Option([], "--status", help="Only runs in these statuses "
                                     f"(repeat it, or separate by commas): "
                                     f"{', '.join(_RUN_STATUSES)}."),
    since: str = typer.Option("", "--since", help="Created at or after (ISO 8601)."),
    limit: int = typer.Option(20, "--limit", min=1, max=1000, help="At most this many."),
    page_token: str = typer.Option("", "--page-token",
                                   help="Go on from where a listing stopped (it prints it)."),
    orchestrator: str = ORCHESTRATOR_OPTION,
) -> None:
    """List runs, newest first."""
    given = [part.strip() for item in status for part in item.split(",") if part.strip()]
    unknown = [s for s in given if s.upper() not in _RUN_STATUSES]
    wanted = [s.upper() for s in given]
    if unknown:
        raise typer.BadParameter(f"{', '.join(map(repr, unknown))}: not a run status; "
                                 f"choose from {', '.join(_RUN_STATUSES)}",
                                 param_hint="--status")
    stub = _stub(orchestrator)
    request = pb.ListRunsRequest(
        workflow_id=_workflow_id(stub, workflow, deleted_too=True) if workflow else "",
        page_size=limit,
        statuses=[f"STATUS_{s}" for s in wanted], page_token=page_token)
    if since:
        try:
            start = dt.datetime.fromisoformat(since)
        except ValueError:
            raise typer.BadParameter(f"{since!r} is not an ISO 8601 time, e.g. 2026-11-30 or "
                                     "2026-11-30T08:00:00Z", param_hint="--since") from None
        request.start_time.FromDatetime(start.astimezone(dt.UTC))
    reply = stub.ListRuns(request)
    table = Table(Column("run", no_wrap=True), "workflow", "status", "steps", "created")
    for item in reply.runs:
        shown = status_name(item.status)
        counts = ", ".join(f"{v} {k.lower()}" for k, v in sorted(item.step_counts.items()))
        table.add_row(item.run_id, item.workflow_name, Text(shown, style=STYLES[shown]),
                      counts, item.create_time.ToDatetime().isoformat(timespec="seconds"))
    out = console()
    if reply.runs:
        out.print(table)
    else:
        typer.echo("no runs match")
    if reply.next_page_token:
        typer.echo(f"more: --page-token {reply.next_page_token}")


@runs_app.command("get")
@_errors
def runs_get(run_id: str, orchestrator: str = ORCHESTRATOR_OPTION) -> None:
    """Show a run with its steps: one JSON object, {"run": ..., "steps": [...]}."""
    stub = _stub(orchestrator)
    show({"run": stub.GetRun(pb.GetRunRequest(run_id=run_id)).run,
          "steps": list(stub.ListRunSteps(pb.ListRunStepsRequest(run_id=run_id)).steps)})


# CancelRun and RetryRun get a fresh request_id per command unless given one: a
# script that runs the command again after a lost answer passes the same id and
# gets the run instead of an invalid transition.
_REQUEST_ID_OPTION = typer.Option(
    "", "--request-id", help="Send this request_id (default: a new one): the same id "
    "again, from the same caller on the same run, repeats nothing and prints the run.")


@runs_app.command("cancel")
@_errors
def runs_cancel(run_id: str, request_id: str = _REQUEST_ID_OPTION,
                orchestrator: str = ORCHESTRATOR_OPTION) -> None:
    """Cancel a run: in-flight steps are cancelled, pending ones skipped."""
    reply = _stub(orchestrator).CancelRun(pb.CancelRunRequest(
        run_id=run_id, request_id=request_id or uuid.uuid4().hex), timeout=30)
    typer.echo(f"{run_id} {status_name(reply.run.status)}")


@runs_app.command("retry")
@_errors
def runs_retry(
    run_id: str,
    watch: bool = typer.Option(True, "--watch/--no-watch", help="Follow the run live."),
    request_id: str = _REQUEST_ID_OPTION,
    orchestrator: str = ORCHESTRATOR_OPTION,
) -> None:
    """Resume a FAILED, PARTIAL or CANCELLED run; completed steps are kept."""
    stub = _stub(orchestrator)
    reply = stub.RetryRun(pb.RetryRunRequest(run_id=run_id,
                                             request_id=request_id or uuid.uuid4().hex))
    if not watch:
        typer.echo(f"{run_id} {status_name(reply.run.status)}")
        return
    _exit_for(follow(stub, run_id))


@runs_app.command("watch")
@_errors
def runs_watch(run_id: str, orchestrator: str = ORCHESTRATOR_OPTION) -> None:
    """Show a run's steps live until it ends; exit 0 only when it succeeded."""
    _exit_for(follow(_stub(orchestrator), run_id))


@runs_app.command("logs")
@_errors
def runs_logs(run_id: str, orchestrator: str = ORCHESTRATOR_OPTION) -> None:
    """Print a run's log."""
    stub, token = _stub(orchestrator), ""
    while True:
        page = stub.GetRunLogs(pb.GetRunLogsRequest(run_id=run_id, page_token=token))
        for entry in page.entries:
            when = entry.time.ToDatetime().isoformat(timespec="milliseconds")
            typer.echo(f"{when} {pb.LogEntry.Severity.Name(entry.severity)[9:]:7} {entry.text}")
        token = page.next_page_token
        if not token:
            return


@workflows_app.command("apply")
@_errors
def workflows_apply(
    file: Path = typer.Argument(..., exists=True, dir_okay=False,
                                help="Workflow definition (YAML or JSON)."),
    orchestrator: str = ORCHESTRATOR_OPTION,
) -> None:
    """Create the workflow, or store it as a new version of the one with its id or name."""
    try:
        definition = load_workflow(file)
    except (ValueError, OSError) as exc:
        raise typer.BadParameter(str(exc)) from exc
    stub = _stub(orchestrator)
    existing = definition.workflow_id
    if not existing:
        found = stub.ListWorkflows(pb.ListWorkflowsRequest(name=definition.name, page_size=2))
        if len(found.workflows) > 1:
            # Versioning one of them at random would change a workflow nobody chose.
            raise typer.BadParameter(
                f"several workflows are named {definition.name!r}: put the id of the one "
                f"to version in {file} (workflow_id: ...), e.g. "
                + " or ".join(w.workflow_id for w in found.workflows) + "; nothing was written")
        existing = found.workflows[0].workflow_id if found.workflows else ""
    if existing:
        try:
            stub.GetWorkflow(pb.GetWorkflowRequest(workflow_id=existing))
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND:
                raise
            existing = ""
    if existing:
        definition.workflow_id = existing
        reply = stub.UpdateWorkflow(pb.UpdateWorkflowRequest(
            workflow=definition, update_mask=field_mask_pb2.FieldMask(paths=["*"])))
    else:
        reply = stub.CreateWorkflow(pb.CreateWorkflowRequest(workflow=definition,
                                                             request_id=uuid.uuid4().hex))
    workflow = reply.workflow
    typer.echo(f"{workflow.workflow_id} {workflow.name} version {workflow.version}")


@workflows_app.command("list")
@_errors
def workflows_list(
    name: str = typer.Option("", "--name", help="Only workflows with this name."),
    deleted: bool = typer.Option(False, "--deleted", help="List deleted workflows."),
    orchestrator: str = ORCHESTRATOR_OPTION,
) -> None:
    """List workflows (latest versions)."""
    stub, token = _stub(orchestrator), ""
    table = Table(Column("id", no_wrap=True), "name", "version", "mode", "steps",
                  "description")
    while True:
        page = stub.ListWorkflows(pb.ListWorkflowsRequest(
            name=name, page_token=token, status=pb.Workflow.STATUS_DELETED if deleted
            else pb.Workflow.STATUS_ACTIVE))
        for w in page.workflows:
            mode = pb.Workflow.ExecutionMode.Name(w.execution_mode).removeprefix(
                "EXECUTION_MODE_").lower()
            table.add_row(w.workflow_id, w.name, str(w.version), mode, str(len(w.steps)),
                          w.description[:50])
        token = page.next_page_token
        if not token:
            break
    if table.row_count:
        console().print(table)
    else:
        typer.echo("no workflows match")


@workflows_app.command("get")
@_errors
def workflows_get(
    workflow_id: str,
    version: int = typer.Option(0, "--version", min=0, max=2**31 - 1,
                                help="A version; 0 means the latest."),
    orchestrator: str = ORCHESTRATOR_OPTION,
) -> None:
    """Show a workflow definition (JSON), by its id or its name."""
    stub = _stub(orchestrator)
    show(stub.GetWorkflow(pb.GetWorkflowRequest(
        workflow_id=_workflow_id(stub, workflow_id), version=version)).workflow)


def _workflow_id(stub, id_or_name: str, *, deleted_too: bool = False) -> str:
    """The id of the stored workflow with this id, else with this name (`deleted_too`:
    a deleted one's when no active workflow has it, e.g. to list its past runs)."""
    try:
        return stub.GetWorkflow(pb.GetWorkflowRequest(workflow_id=id_or_name)).workflow.workflow_id
    except grpc.RpcError as exc:
        if exc.code() != grpc.StatusCode.NOT_FOUND:
            raise
        named = stub.ListWorkflows(pb.ListWorkflowsRequest(name=id_or_name, page_size=2))
        if not named.workflows and deleted_too:
            named = stub.ListWorkflows(pb.ListWorkflowsRequest(
                name=id_or_name, page_size=2, status=pb.Workflow.STATUS_DELETED))
        if len(named.workflows) > 1:
            raise typer.BadParameter(
                f"several workflows are named {id_or_name!r}: give the id ("
                + ", ".join(w.workflow_id for w in named.workflows)
                + (", ..." if named.next_page_token else "") + ")") from None
        if not named.workflows:
            raise
        return named.workflows[0].workflow_id
