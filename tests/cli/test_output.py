"""What the CLI prints."""

from __future__ import annotations

import json

from baton.orchestrator.v1 import orchestrator_pb2
from baton_cli._commands import show
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
