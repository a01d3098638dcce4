"""What the CLI prints."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from baton.orchestrator.v1 import orchestrator_pb2
from baton_cli._commands import show
from baton_cli.main import app
from baton_core import dict_to_struct


def test_whole_numbers_print_as_integers_as_grpcurl_and_the_gateway_print_them(capsys):
    # A Struct holds every number as a double; printed as is, a sum of 5 read `5.0`.
    reply = orchestrator_pb2.DispatchResponse(result=dict_to_struct(
        {"sum": 5, "ratio": 2.5, "items": [1, {"count": 3}], "big": 2.0**60}))
    show(reply)
    printed = capsys.readouterr().out
    assert '"sum": 5' in printed and '"count": 3' in printed and "5.0" not in printed
    assert json.loads(printed)["result"] == {"sum": 5, "ratio": 2.5, "items": [1, {"count": 3}],
                                             "big": 2.0**60}
    show([reply, {"n": 4.0}])
    assert json.loads(capsys.readouterr().out)[1] == {"n": 4}


def test_defaults_and_empty_lists_are_printed_as_the_gateway_prints_them(capsys):
    # An empty listing printed `{}`; the gateway's JSON has every scalar and list.
    show(orchestrator_pb2.DispatchResponse(metadata=orchestrator_pb2.DispatchMetadata(
        execution_id="ex_1")))
    metadata = json.loads(capsys.readouterr().out)["metadata"]
    assert metadata["attempts"] == 0 and metadata["hooks_run"] == []
    assert metadata["dry_run"] is False and metadata["execution_id"] == "ex_1"


@pytest.mark.parametrize(("args", "problem"), [
    (["runs", "list", "--status", "bogus", "--status", "running"],
     "Invalid value for --status: 'bogus': not a run status; choose from PENDING, RUNNING, "
     "SUCCEEDED, FAILED, CANCELLED, PARTIAL"),
    (["runs", "list", "--since", "yesterday"],
     "Invalid value for --since: 'yesterday' is not an ISO 8601 time"),
    (["token", "--role", "admin", "--ttl", "-5"],
     "Invalid value for '--ttl': Input should be greater than or equal to 1"),
    (["dispatch", "demo.echo", "--params", "[1]"], "--params must be a JSON object"),
])
def test_a_bad_option_is_a_usage_error_saying_what_is_wrong(args, problem, tmp_path):
    # Each is refused before anything is called: no server runs here.
    result = CliRunner().invoke(app, [*args, "--data-dir", str(tmp_path)] if args[0] == "token"
                                else args)
    said = " ".join(result.output.replace("│", " ").split())
    assert result.exit_code == 2, said
    assert problem in said and "Traceback" not in said


@pytest.mark.parametrize(("args", "says"), [
    (["dispatch", "demo.echo", "--params", "[" * 3000 + "]" * 3000], "nested too deeply"),
    (["dispatch", "demo.echo", "--params", '{"value": NaN}'], "NaN, Infinity"),
    (["dispatch", "demo.echo", "--timeout", "1e400"], "from 0 to 86400"),
    (["dispatch", "demo.echo", "--timeout", "nan"], "from 0 to 86400"),
    (["run", "--workflow", "x", "--version", "99999999999"], "--version"),
    (["run", "--workflow", "x", "--input", '{"a": Infinity}'], "NaN, Infinity"),
])
def test_bad_arguments_get_a_readable_message_not_a_traceback(args, says):
    result = CliRunner().invoke(app, [*args, "--orchestrator", "127.0.0.1:9"])
    assert result.exit_code == 2, result.output
    assert says in result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_a_workflow_file_nested_too_deeply_is_a_readable_error(tmp_path):
    deep = tmp_path / "deep.yaml"
    deep.write_text("name: deep\nsteps:\n  - step_id: a\n    method: demo.echo\n"
                    "    params: " + "[" * 3000 + "]" * 3000 + "\n")
    result = CliRunner().invoke(app, ["workflows", "apply", str(deep),
                                      "--orchestrator", "127.0.0.1:9"])
    assert result.exit_code == 2, result.output
    assert "nested too deeply" in result.output


@pytest.mark.parametrize("group", [[], ["runs"], ["workflows"], ["sessions"], ["methods"],
                                   ["apikey"]])
def test_every_command_is_summed_up_on_one_line_of_its_listing(group):
    # A summary broken in the middle of its docstring was listed over two lines
    # however wide the terminal ("... exit 0 only" / "when it succeeds.").
    result = CliRunner().invoke(app, [*group, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    listing = result.output.split("Commands ", 1)[1].split("╰", 1)[0].splitlines()[1:]
    assert listing and all(not row.startswith("│  ") for row in listing), "\n".join(listing)
