"""`python -m baton_examples.casefile_worker` as a real process against a real registry."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from contextlib import aclosing

import pytest

from baton.registry.v1 import registry_pb2
from baton_core import constants, free_port, struct_to_dict
from baton_sdk import ProviderClient, RegistryClient

pytestmark = pytest.mark.timeout(30)

METHODS = {"casefile.create", "casefile.add_note", "casefile.list_notes",
           "demo.sleep", "demo.fail", "demo.echo"}


async def test_worker_process_registers_serves_and_stops_on_sigterm(registry_addr, tmp_path):
    listen = f"127.0.0.1:{free_port()}"
    env = {**os.environ, constants.ENV_REGISTRY_ADDR: registry_addr,
           "BATON_WORKER_LISTEN": listen, constants.ENV_DATA_DIR: str(tmp_path)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "baton_examples.casefile_worker", env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        async with RegistryClient(registry_addr) as registry:
            available: set[str] = set()
            async with aclosing(registry.watch_methods()) as watch:
                async for event in watch:
                    if any(e.address == listen and e.state == registry_pb2.Endpoint.STATE_AVAILABLE
                           for e in event.method.endpoints):
                        available.add(event.method.name)
                    if METHODS <= available:
                        break
        async with ProviderClient(listen) as worker:
            reply = await worker.invoke("demo.echo", {"value": "hi"}, timeout=5)
        assert struct_to_dict(reply.result) == {"value": "hi"}
        assert (tmp_path / "casefile_worker.db").exists()
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        stderr = await asyncio.wait_for(proc.stderr.read(), 15)
        await asyncio.wait_for(proc.wait(), 15)
    assert proc.returncode == 0, stderr.decode()[-2000:]
    assert b"Traceback" not in stderr
