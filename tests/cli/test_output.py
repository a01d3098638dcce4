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
