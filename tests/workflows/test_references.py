"""References `${input.x}`, `${context.x}`, `${steps.<id>.<path>}`, resolved at run time."""

from __future__ import annotations

from baton.orchestrator.v1 import workflows_pb2 as pb
from baton_sdk import WorkflowBuilder

from .conftest import new_session, run_to_end

S = pb.RunStep
R = pb.Run


async def test_every_reference_form_resolves(stub, orchestrator):
    session_id = await new_session(orchestrator, {"owner": {"name": "Ada"}, "n": 3})
    wf = (WorkflowBuilder("refs").with_execution_mode("dag")
          .add_step("casefile.create", {"title": "${input.title}"}, step_id="create")
          .add_step("casefile.add_note", {"casefile_id": "${steps.create.casefile_id}",
                                          "text": "by ${context.owner.name}"},
                    step_id="note", depends_on=["create"])
          .add_step("casefile.list_notes", {"casefile_id": "${steps.create.casefile_id}"},
                    step_id="list", depends_on=["note"])
          .add_step("demo.echo", {"value": {
              "whole_number": "${context.n}",
              "whole_list": "${input.tags}",
              "indexed": "${steps.list.notes[0].text}",
              "in_text": "notes: ${steps.note.note_count}, tags ${input.tags}",
              "literal": "$${not.a.reference}",
          }}, step_id="echo", depends_on=["list"]))
    run, steps = await run_to_end(stub, wf.build(), session_id=session_id,
                                  input={"title": "T", "tags": ["a", "b"]})
    assert run.status == R.STATUS_SUCCEEDED, run.error
    assert steps["note"].input["text"] == "by Ada"
    value = run.output["echo"]["value"]
    assert value["whole_number"] == 3
    assert list(value["whole_list"]) == ["a", "b"]
    assert value["indexed"] == "by Ada"
    assert value["in_text"] == 'notes: 1, tags ["a","b"]'
    assert value["literal"] == "${not.a.reference}"


async def test_missing_reference_fails_the_step_naming_it(stub):
    wf = (WorkflowBuilder("missing")
          .add_step("demo.echo", {"value": {"x": 1}}, step_id="a")
          .add_step("demo.echo", {"value": "${steps.a.value.y}"}, step_id="b")
          .add_step("demo.echo", {"value": "${input.nope}"}, step_id="c"))
    run, steps = await run_to_end(stub, wf.build())
    assert run.status == R.STATUS_FAILED
    assert steps["b"].status == S.STATUS_FAILED and steps["b"].attempts == 0
    assert "${steps.a.value.y}" in steps["b"].error.message
    assert steps["b"].error.reason == "UNRESOLVED_REFERENCE"
    assert steps["c"].status == S.STATUS_SKIPPED


async def test_context_reference_without_a_session_fails_clearly(stub):
    wf = WorkflowBuilder("nosession").add_step("demo.echo", {"value": "${context.x}"},
                                               step_id="a")
    run, steps = await run_to_end(stub, wf.build())
    assert run.status == R.STATUS_FAILED
    assert "no session" in steps["a"].error.message


async def test_list_index_out_of_range_names_the_reference(stub):
    wf = WorkflowBuilder("index").add_step("demo.echo", {"value": "${input.items[5]}"},
                                           step_id="a")
    _run, steps = await run_to_end(stub, wf.build(), input={"items": [1]})
    assert "${input.items[5]}" in steps["a"].error.message and "[5]" in steps["a"].error.message


async def test_an_escape_alone_reaches_the_worker_as_a_literal(stub):
    wf = WorkflowBuilder("escape_only").add_step(
        "demo.echo", {"value": "$${input.n} costs $$5"}, step_id="e").build()
    run, steps = await run_to_end(stub, wf, input={"n": 1})
    assert run.status == pb.Run.STATUS_SUCCEEDED, run.error
    assert dict(steps["e"].output) == {"value": "${input.n} costs $$5"}
