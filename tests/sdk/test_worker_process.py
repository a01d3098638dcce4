"""A worker in a process of its own: what stops it (SIGTERM, Ctrl-C), what does not
(a KeyboardInterrupt its method raises), and the log it leaves when it stops."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from pathlib import Path

import grpc
import pytest

from baton.provider.v1 import provider_pb2, provider_pb2_grpc
from baton_core import BatonError, Internal, dict_to_struct, struct_to_dict
from baton_sdk import METHOD_FAILED, ProviderClient

pytestmark = pytest.mark.timeout(30)

SCRIPT = str(Path(__file__).with_name("signalled_worker.py"))


class WorkerProcess:
    """A running signalled_worker.py, its address, and the log read from it so far."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.address = ""
        self._lines: list[str] = []

    @property
    def log(self) -> str:
        return "".join(self._lines)

    async def wait_for(self, text: str, timeout: float = 10) -> str:
        """Reads the log up to the next line holding `text`, and returns that line."""
        assert self.process.stderr is not None
        async with asyncio.timeout(timeout):
            while True:
                line = (await self.process.stderr.readline()).decode()
                if not line:
                    raise AssertionError(f"the worker ended before logging {text!r}:\n{self.log}")
                self._lines.append(line)
                if text in line:
                    return line

    async def exit_code(self, timeout: float = 10) -> int:
        """Waits for the process to end, reading the rest of its log."""
        assert self.process.stderr is not None
        async with asyncio.timeout(timeout):
            self._lines.append((await self.process.stderr.read()).decode())
            return await self.process.wait()


@pytest.fixture
async def worker_process():
    """Starts signalled_worker.py run the given way; kills what is left after the test."""
    started: list[WorkerProcess] = []

    async def start(how: str) -> WorkerProcess:
        process = await asyncio.create_subprocess_exec(
            sys.executable, SCRIPT, how, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE)
        worker = WorkerProcess(process)
        started.append(worker)
        serving = await worker.wait_for(" serving ")
        found = re.search(r" on (\S+)$", serving.strip())
        assert found, serving
        worker.address = found.group(1)
        return worker

    yield start
    for worker in started:
        if worker.process.returncode is None:
            worker.process.kill()
            await worker.process.wait()


def invocation(invocation_id: int, name: str, seconds: float) -> provider_pb2.Invocation:
    return provider_pb2.Invocation(id=invocation_id, request=provider_pb2.InvokeRequest(
        method=name, params=dict_to_struct({"seconds": seconds})))


async def test_a_worker_stopped_with_channels_open_logs_no_traceback(worker_process):
    # The orchestrator keeps OpenChannel streams open to every worker; those the
    # stop cut at the end of the grace period were logged as unhandled CancelledErrors.
    worker = await worker_process("run")
    async with grpc.aio.insecure_channel(worker.address) as channel:
        stub = provider_pb2_grpc.MethodProviderStub(channel)
        idle, busy = stub.OpenChannel(), stub.OpenChannel()
        await idle.write(provider_pb2.OpenChannelRequest(
            invocations=[invocation(1, "proc.spin", 0)]))
        [done] = (await idle.read()).completions
        assert done.HasField("response")
        await busy.write(provider_pb2.OpenChannelRequest(
            invocations=[invocation(1, "proc.nap", 30)]))
        await worker.wait_for("napping")  # outlasts the grace period (0.5 s)
        worker.process.send_signal(signal.SIGTERM)
        assert await worker.exit_code() == 0
        assert await idle.read() is grpc.aio.EOF  # ended by the worker, not broken
        busy.cancel()
    assert "stopped" in worker.log
    assert "Traceback" not in worker.log, worker.log


async def test_keyboard_interrupt_of_a_method_fails_its_call_and_ctrl_c_still_stops(
        worker_process):
    worker = await worker_process("run")
    async with ProviderClient(worker.address) as client:
        with pytest.raises(Internal) as caught:
            await client.invoke("proc.interrupt", timeout=5)
        assert caught.value.message == "method proc.interrupt raised KeyboardInterrupt()"
        assert caught.value.reason == METHOD_FAILED
        reply = await client.invoke("proc.nap", {"seconds": 0}, timeout=5)  # still serving
        assert struct_to_dict(reply.result) == {"seconds": 0}
    worker.process.send_signal(signal.SIGINT)
    assert await worker.exit_code() == 0  # a graceful stop
    assert "stopped" in worker.log


@pytest.mark.parametrize("how", ["async-with", "run-until-complete"])
async def test_ctrl_c_that_lands_in_a_methods_code_still_stops_the_worker(worker_process, how):
    # Python raises the KeyboardInterrupt of a Ctrl-C in whatever code runs, here a
    # method's: it must not be taken for the method's own and answered as a failure.
    worker = await worker_process(how)
    async with ProviderClient(worker.address) as client:
        call = asyncio.create_task(client.invoke("proc.spin", {"seconds": 20}, timeout=25))
        await worker.wait_for("spinning")
        # Under asyncio.run the first Ctrl-C only cancels the main task (which waits
        # for the loop the method holds); the second raises KeyboardInterrupt.
        async with asyncio.timeout(10):
            while worker.process.returncode is None:
                worker.process.send_signal(signal.SIGINT)
                try:
                    await asyncio.wait_for(worker.process.wait(), 0.2)
                except TimeoutError:
                    pass
        with pytest.raises(BatonError) as caught:
            await call
    assert caught.value.reason != METHOD_FAILED, caught.value.message
    assert caught.value.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)
    assert await worker.exit_code() != 0
    assert "KeyboardInterrupt" in worker.log
