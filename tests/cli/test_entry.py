"""The `baton` console script: Ctrl-C while it starts up ends it quietly."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux's /proc"),
]

BATON = Path(sys.executable).with_name("baton")


def _loading_grpc(pid: int) -> bool:
    """Whether gRPC's extension is mapped into the process: the CLI is then
    importing (for about another half second), well before it runs a command."""
    try:
        return "cygrpc" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


def _interrupted_while_importing(argv: list[str]) -> subprocess.CompletedProcess | None:
    """Runs `argv`, sending SIGINT as soon as it loads gRPC; None when the signal
    could not be sent in time (the process ended first, or never loaded gRPC)."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while proc.poll() is None and not _loading_grpc(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.001)
    sent = proc.poll() is None and _loading_grpc(proc.pid)
    if sent:
        proc.send_signal(signal.SIGINT)
    else:
        proc.kill()
    out, err = proc.communicate(timeout=30)
    return subprocess.CompletedProcess(argv, proc.returncode, out, err) if sent else None


@pytest.mark.parametrize("argv", [[str(BATON), "--help"],
                                  [sys.executable, "-m", "baton_cli", "--help"]])
def test_ctrl_c_while_the_cli_imports_ends_it_quietly(argv):
    for _ in range(3):
        done = _interrupted_while_importing(argv)
        if done is not None:
            break
    else:
        pytest.skip("the CLI never stayed long enough in its imports to be interrupted")
    assert b"Traceback" not in done.stderr, done.stderr.decode()
    assert done.stderr == b"" and done.stdout == b""
    # Killed by SIGINT, as Python ends on an uncaught KeyboardInterrupt: a shell
    # reports 130 and a script running `baton` stops as well.
    assert done.returncode == -signal.SIGINT


def test_the_cli_still_runs_a_command():
    for argv in ([str(BATON), "--help"], [sys.executable, "-m", "baton_cli", "--help"]):
        done = subprocess.run(argv, capture_output=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr.decode()
        assert b"Usage" in done.stdout
