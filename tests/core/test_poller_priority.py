"""The shared bootstrap lowers the priority of grpc.aio's poller thread
(BATON_GRPC_POLLER_NICE), and only that thread's; a bad value stops startup."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from baton_core._grpc_env import ENV_POLLER_NICE, poller_nice

# A fresh process: the poller thread is one per process and keeps its priority.
_PROBE = """
import asyncio, json, os, threading
from baton_core import GrpcServer

async def main():
    server = GrpcServer("127.0.0.1:0", [])
    await server.start()
    print(json.dumps({t.name: os.getpriority(os.PRIO_PROCESS, t.native_id)
                      for t in threading.enumerate() if t.native_id}))
    await server.stop(0)

asyncio.run(main())
"""


def _priorities(**env: str) -> dict[str, int]:
    out = subprocess.run([sys.executable, "-c", _PROBE], env={**os.environ, **env},
                         capture_output=True, text=True, timeout=60, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not hasattr(os, "setpriority"), reason="no thread priorities here")
@pytest.mark.parametrize(("setting", "expected"), [("", 10), ("15", 15), ("0", None)])
def test_only_the_poller_thread_is_lowered(setting, expected):
    priorities = _priorities(**{ENV_POLLER_NICE: setting})
    base = os.getpriority(os.PRIO_PROCESS, 0)
    pollers = [v for k, v in priorities.items() if k.endswith("(_poll_wrapper)")]
    assert len(pollers) == 1
    assert pollers[0] == (base if expected is None else max(base, expected))
    assert priorities["MainThread"] == base


def test_the_setting_must_be_a_nice_value(monkeypatch):
    monkeypatch.delenv(ENV_POLLER_NICE, raising=False)
    assert poller_nice() == 10
    monkeypatch.setenv(ENV_POLLER_NICE, " 3 ")
    assert poller_nice() == 3
    for bad in ("abc", "-1", "20", "2.5"):
        monkeypatch.setenv(ENV_POLLER_NICE, bad)
        with pytest.raises(ValueError, match=ENV_POLLER_NICE):
            poller_nice()
