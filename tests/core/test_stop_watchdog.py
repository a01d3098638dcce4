"""A stop that hangs ends the process anyway, saying where it waited."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from baton_core import free_port


def test_a_stop_that_hangs_exits_with_1_and_says_where_it_waited():
    proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("hanging_app.py")),
                             str(free_port())], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"serving\n"
        proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    took = time.monotonic() - started
    assert proc.returncode == 1, err.decode()
    assert took < 10, took  # its budget: 0.1 s of grace and a margin of 0.5 s
    text = err.decode()
    assert "the stop did not end within 0.6s; exiting. Still running:" in text
    assert "in never_ends" in text and "in stop" in text  # the task's stack
    assert "Thread" in text  # every thread's traceback too
