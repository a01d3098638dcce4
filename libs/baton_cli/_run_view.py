"""The live view of a run: a table redrawn in place on a terminal, a line per
event into a pipe; it follows the run through orchestrator restarts."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import grpc
import typer
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from baton.orchestrator.v1 import workflows_pb2 as pb

# How long `baton run` and `runs watch` keep trying to reach a lost orchestrator.
RECONNECT_SECONDS = 60.0
STYLES = {"PENDING": "dim", "RUNNING": "cyan", "SUCCEEDED": "green", "FAILED": "red",
           "CANCELLED": "yellow", "SKIPPED": "dim", "PARTIAL": "yellow"}


def status_name(value: int, enum=pb.Run.Status) -> str:
    return enum.Name(value).removeprefix("STATUS_")


def _seconds(ts) -> float | None:
    return ts.ToNanoseconds() / 1e9 if ts.seconds or ts.nanos else None


class RunView:
    """The live state of a run, built from its WatchRun events."""

    def __init__(self, run: pb.Run) -> None:
        self.run = run
        self.status = status_name(run.status)
        self.note = ""  # e.g. while the orchestrator cannot be reached
        self.steps: dict[str, dict[str, Any]] = {
            s.step_id: {"method": s.method, "status": "PENDING", "attempt": 0, "start": None,
                        "end": None, "detail": ""} for s in run.definition.steps}

    def apply(self, event: pb.RunEvent) -> None:
        when = _seconds(event.create_time) or time.time()
        if not event.step_id:
            self.status = status_name(event.run_status)
            if event.error.message:
                self.run.error.CopyFrom(event.error)
            elif self.status in ("PENDING", "RUNNING", "SUCCEEDED"):
                self.run.ClearField("error")  # retried: the earlier failure is over
            return
        step = self.steps.setdefault(event.step_id, {"method": "", "status": "PENDING",
                                                     "attempt": 0, "start": None, "end": None,
                                                     "detail": ""})
        ended_before = step["end"] is not None
        step["status"] = status_name(event.step_status, pb.RunStep.Status)
        step["attempt"] = event.attempt or step["attempt"]
        step["detail"] = event.message
        if step["status"] == "RUNNING":
            # A step run again after it ended (the run retried) is timed afresh.
            step["start"] = when if ended_before or step["start"] is None else step["start"]
            step["end"] = None
        elif step["status"] != "PENDING":
            step["end"] = when

    @property
    def ended(self) -> bool:
        return self.status in ("SUCCEEDED", "FAILED", "CANCELLED", "PARTIAL")

    def __rich__(self) -> Group:
        table = Table(expand=False, title_justify="left",
                      title=f"{self.run.workflow_name}  [bold]{self.run.run_id}[/]")
        for column in ("step", "method", "status", "attempt", "time", "detail"):
            table.add_column(column, justify="right" if column in ("attempt", "time") else "left",
                             no_wrap=column != "detail")
        now = time.time()
        for step_id, step in self.steps.items():
            elapsed = ""
            if step["start"] is not None:
                elapsed = f"{(step['end'] or now) - step['start']:.2f}s"
            table.add_row(step_id, step["method"], Text(step["status"],
                                                        style=STYLES[step["status"]]),
                          str(step["attempt"] or ""), elapsed, step["detail"])
        done = sum(s["status"] in ("SUCCEEDED", "FAILED", "SKIPPED", "CANCELLED")
                   for s in self.steps.values())
        line = Text(f"run {self.status}", style=STYLES.get(self.status, "") + " bold")
        line.append(f"  {done}/{len(self.steps)} steps done", style="")
        if self.run.error.message:
            line.append(f"\n{self.run.error.code}: {self.run.error.message}", style="red")
        if self.note:
            line.append(f"\n{self.note}", style="yellow")
        return Group(table, line)


# Width of tables written to a pipe or file (a terminal's own width otherwise;
# COLUMNS still wins): wide enough that ids, times and messages are not cut.
PIPE_WIDTH = 200


def console() -> Console:
    """A console for tables: the terminal's width, or PIPE_WIDTH into a pipe or file."""
    out = Console()
    if not out.is_terminal and "COLUMNS" not in os.environ:
        out = Console(width=PIPE_WIDTH)
    return out


def follow(stub, run_id: str, out: Console | None = None) -> RunView:
    """Shows the run's steps live until it ends; returns the final view. Ctrl-C
    stops watching, not the run, and says how to go on. Into a pipe or file (a CI
    log, say) each event is a line as it happens, then the final table."""
    out = out or console()
    try:
        # Inside the try: a Ctrl-C this early still says which run goes on.
        view = RunView(stub.GetRun(pb.GetRunRequest(run_id=run_id)).run)
        if out.is_terminal:
            with Live(view, console=out, refresh_per_second=8, transient=False) as live:
                _watch(stub, view, lambda _event: live.refresh())
        else:
            _watch(stub, view, lambda event: out.print(
                view.note if event is None else _event_line(event), highlight=False,
                soft_wrap=True))
            out.print(view)
    except KeyboardInterrupt:
        typer.echo(f"\nstopped watching; run {run_id} goes on (baton runs watch {run_id} to "
                   f"follow it again, baton runs cancel {run_id} to stop it)", err=True)
        raise typer.Exit(130) from None
    return view


def _event_line(event: pb.RunEvent) -> str:
    """One event as a line of text: time, what changed, and its message."""
    when = event.create_time.ToDatetime().strftime("%H:%M:%S.%f")[:-3]
    if event.step_id:
        what = f"step {event.step_id} {status_name(event.step_status, pb.RunStep.Status)}"
        if event.attempt > 1:
            what += f" (attempt {event.attempt})"
    else:
        what = f"run {status_name(event.run_status)}"
    return f"{when} {what}" + (f": {event.message}" if event.message else "")


def _watch(stub, view: RunView, refresh: Callable[[pb.RunEvent | None], None]) -> None:
    """Applies the run's events until it ends. Runs outlive an orchestrator that
    restarts (or a replica that dies), so a broken stream is opened again after
    the last event seen, for up to RECONNECT_SECONDS of failing in a row."""
    after, failing_since = 0, None
    while True:
        error: grpc.RpcError | None = None
        try:
            for reply in stub.WatchRun(pb.WatchRunRequest(run_id=view.run.run_id,
                                                          after_sequence=after)):
                failing_since, view.note = None, ""
                after = reply.event.sequence
                view.apply(reply.event)
                refresh(reply.event)
            if view.ended:
                return
        except grpc.RpcError as exc:
            if exc.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
                raise
            error = exc
        failing_since = failing_since or time.monotonic()
        if time.monotonic() - failing_since > RECONNECT_SECONDS:
            if error is not None:
                raise error
            typer.secho("error: the run's events stopped before its end", fg="red", err=True)
            raise typer.Exit(2)
        why = error.code().name if error is not None else "its events stopped"
        view.note = f"lost the orchestrator ({why}); reconnecting..."
        refresh(None)
        time.sleep(0.5)
