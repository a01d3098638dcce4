"""Workflow files that cannot be read: one readable error naming the file and the place."""

from __future__ import annotations

import datetime as dt

import pytest
from typer.testing import CliRunner

from baton_cli.main import app
from baton_sdk import (
    RetryPolicy,
    WorkflowBuilder,
    load_workflow,
    workflow_from_dict,
    workflow_to_dict,
)

BAD_FILES = [
    ("broken.yaml", "steps: [\n", "not valid YAML: expected the node content, but found "
     "'<stream end>' at line 2, column 1"),
    ("broken.json", '{"steps": [}', "not valid JSON: Expecting value at line 1, column 12"),
    ("tagged.yaml", "name: x\nsteps:\n  - method: demo.echo\n    params: "
     "{a: !!python/object:os.system x}\n", "not valid YAML: could not determine a constructor"),
    ("latin1.yaml", b"name: caf\xe9\n", "not UTF-8 text (byte 9)"),
    ("list.yaml", "- a\n- b\n", "expected a mapping (name, steps, ...) at the top level"),
    ("empty.yaml", "", "expected a mapping (name, steps, ...) at the top level"),
    ("steps.yaml", "name: x\nsteps: 5\n", "steps: must be a list of steps"),
    ("step.yaml", "name: x\nsteps: [a, b]\n", "2 problems: steps[0]: must be a mapping with at "
     "least a method; steps[1]: must be a mapping with at least a method"),
    ("method.yaml", "name: x\nsteps:\n  - method: [1]\n", "steps[0].method: must be a string"),
    ("params.yaml", "name: x\nsteps:\n  - method: demo.echo\n    params: hello\n",
     "steps[0].params: must be a mapping"),
    ("depends.yaml", "name: x\nsteps:\n  - method: demo.echo\n  - method: demo.echo\n"
     "    depends_on: 5\n", "steps[1].depends_on: must be a step id or a list of step ids"),
    ("timeout.yaml", "name: x\nsteps:\n  - method: demo.echo\n    timeout: soon\n",
     "steps[0].timeout: 'soon' is not a duration"),
    ("retry.yaml", "name: x\nsteps:\n  - method: demo.echo\n    retry: fast\n",
     "steps[0].retry: must be a mapping with keys from strategy"),
    ("retry_key.yaml", "name: x\nsteps:\n  - method: demo.echo\n    retry: {bogus: 1}\n",
     "steps[0].retry: unknown keys: bogus"),
    ("retry_codes.yaml", "name: x\nsteps:\n  - method: demo.echo\n"
     "    retry: {retryable_codes: 5}\n", "steps[0].retry.retryable_codes: must be a list"),
    ("retry_attempts.yaml", "name: x\nsteps:\n  - method: demo.echo\n"
     "    retry: {max_attempts: three}\n", "steps[0].retry.max_attempts: must be a whole number"),
    ("retry_strategy.yaml", "name: x\nsteps:\n  - method: demo.echo\n"
     "    retry: {strategy: sometimes}\n", "steps[0].retry: unknown retry strategy 'sometimes'"),
    ("concurrency.yaml", "name: x\nmax_concurrency: many\nsteps:\n  - method: demo.echo\n",
     "max_concurrency: must be a whole number"),
    ("metadata.yaml", "name: x\nmetadata: [1]\nsteps:\n  - method: demo.echo\n",
     "metadata: must be a mapping of labels to values"),
    ("mode.yaml", "name: x\nexecution_mode: sideways\nsteps:\n  - method: demo.echo\n",
     "execution_mode: must be one of sequential, parallel, dag"),
    ("key.yaml", "name: x\nstepz: []\n", "unknown workflow keys: stepz (known: id, "),
    ("many.yaml", "name: x\ncolour: red\nexecution_mode: sideways\ntimeout: soon\nsteps:\n"
     "  - method: demo.echo\n    params: [1]\n  - {method: demo.echo, retry: {strategy: no}}\n",
     "5 problems: unknown workflow keys: colour (known: id, workflow_id, name, description, "
     "execution_mode, error_handling, timeout, max_concurrency, metadata, steps); "
     "steps[0].params: must be a mapping; steps[1].retry.strategy: must be a string; "
     "execution_mode: must be one of sequential, parallel, dag; timeout: 'soon' is not a "
     "duration"),
    ("nan.yaml", "name: x\nsteps:\n  - method: demo.echo\n    params: {n: .nan}\n",
     "steps[0].params.n: nan is not a JSON number"),
    ("set.yaml", "name: x\nsteps:\n  - method: demo.echo\n    params: {l: [1, {x: !!set {a}}]}\n",
     "steps[0].params.l[1].x: set values are not JSON"),
]


def _write(tmp_path, name, content):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


@pytest.mark.parametrize(("name", "content", "problem"), BAD_FILES,
                         ids=[name for name, _, _ in BAD_FILES])
def test_a_bad_file_is_one_value_error_naming_the_file_and_the_place(tmp_path, name, content,
                                                                    problem):
    path = _write(tmp_path, name, content)
    with pytest.raises(ValueError) as caught:
        load_workflow(path)
    assert str(caught.value).startswith(f"{path}: {problem}"), str(caught.value)


@pytest.mark.parametrize("command", [["run"], ["workflows", "apply"]])
def test_the_cli_says_what_is_wrong_with_the_file_without_a_traceback(tmp_path, command):
    path = _write(tmp_path, "broken.yaml", "steps: [\n")
    result = CliRunner().invoke(app, [*command, str(path)])
    assert result.exit_code == 2, result.output
    # The message is in a box that wraps long lines: compare it as one line of words.
    said = " ".join(result.output.replace("│", " ").split())
    assert "not valid YAML: expected the node content" in said, said
    assert "at line 2, column 1" in said and "Traceback" not in said


def test_a_full_file_reads_back_as_written(tmp_path):
    path = _write(tmp_path, "full.yaml", """
id: wf_full
name: full
description: every key
execution_mode: dag
error_handling: continue_on_failure
timeout: 2m
max_concurrency: 4
metadata: {team: ops, tier: 1}
steps:
  - id: a
    method: demo.echo
    params: {value: 1}
    timeout: 500ms
    retry: {strategy: fixed, max_attempts: 4, initial_delay: 250ms, max_delay: 1s,
            multiplier: 1, retryable_codes: [unavailable, DEADLINE_EXCEEDED]}
  - step_id: b
    method: demo.echo
    depends_on: a
""")
    loaded = load_workflow(path)
    as_dict = workflow_to_dict(loaded)
    assert as_dict["timeout"] == 120 and as_dict["max_concurrency"] == 4
    assert as_dict["metadata"] == {"team": "ops", "tier": "1"}
    first, second = as_dict["steps"]
    assert first["timeout"] == 0.5 and second["depends_on"] == ["a"]
    assert RetryPolicy(**{k: tuple(v) if isinstance(v, list) else v
                          for k, v in first["retry"].items()}) == RetryPolicy(
        strategy="fixed", max_attempts=4, initial_delay=0.25, max_delay=1.0, multiplier=1.0,
        retryable_codes=("UNAVAILABLE", "DEADLINE_EXCEEDED"))
    assert workflow_from_dict(as_dict) == loaded


def test_yaml_dates_and_keys_that_are_not_text_become_json_text(tmp_path):
    # YAML reads `2026-11-30` as a date and `1:` as a number; JSON (and a Struct)
    # has neither, so they are kept as the text they were written as.
    path = _write(tmp_path, "dates.yaml", "name: x\nsteps:\n  - method: demo.echo\n"
                  "    params: {when: 2026-11-30, at: 2026-11-30T10:00:00Z, 1: a,"
                  " nested: [{day: 2026-12-01}]}\n")
    (step,) = workflow_to_dict(load_workflow(path))["steps"]
    assert step["params"] == {"when": "2026-11-30", "at": "2026-11-30T10:00:00+00:00",
                              "1": "a", "nested": [{"day": "2026-12-01"}]}


def test_the_builder_takes_params_as_json_has_them_and_a_bad_step_adds_nothing():
    builder = WorkflowBuilder("built").add_step(
        "demo.echo", {"when": dt.date(2026, 11, 30), "n": 1}, step_id="a")
    for params, kwargs, problem in [
            ({"n": float("inf")}, {}, "steps[1].params.n: inf is not a JSON number"),
            ({"blob": b"x"}, {}, "steps[1].params.blob: bytes values are not JSON"),
            ({}, {"timeout": "soon"}, "steps[1].timeout: 'soon' is not a duration"),
            ({}, {"retry": {"tries": 3}}, "steps[1].retry: unknown keys: tries"),
            ({}, {"timeout": -1}, "steps[1].timeout: must not be negative"),
            ({}, {"step_id": "a"}, "steps[1].id: 'a' is the id of an earlier step")]:
        with pytest.raises(ValueError) as caught:
            builder.add_step("demo.echo", params, **kwargs)
        assert str(caught.value).startswith(problem), str(caught.value)
    for call, problem in ((lambda: builder.with_timeout(-5), "timeout: must not be negative"),
                          (lambda: builder.with_max_concurrency(-1), "max_concurrency: must")):
        with pytest.raises(ValueError, match=problem):
            call()
    built = builder.build()
    assert [s.step_id for s in built.steps] == ["a"]
    assert workflow_to_dict(built)["steps"][0]["params"] == {"when": "2026-11-30", "n": 1}
