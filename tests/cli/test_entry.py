"""The `baton` console script: Ctrl-C while it starts up ends it quietly."""

from __future__ import annotations

import os
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

# Loaded by every Python started with this directory on PYTHONPATH: it holds the
# import of typer (which the command line loads after gRPC) open for a while and
# says so in a file, so the test interrupts the CLI while it imports, every time,
# however fast the machine loads the rest.
_SITECUSTOMIZE = """
import importlib.abc, os, pathlib, sys, time

class _Slow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "typer":
            sys.meta_path.remove(self)
            pathlib.Path(os.environ["BATON_TEST_IMPORTING"]).write_text("typer")
            time.sleep(20)
        return None

sys.meta_path.insert(0, _Slow())
"""


def _interrupted_while_importing(argv: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    """Runs `argv` and sends SIGINT while it imports typer (held open for it)."""
    (tmp_path / "sitecustomize.py").write_text(_SITECUSTOMIZE)
    marker = tmp_path / "importing"
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "BATON_TEST_IMPORTING": str(marker)}
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 30
    while proc.poll() is None and not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert marker.exists(), "the CLI never reached the import of typer"
    # Loaded before typer: the interrupt lands after gRPC has been set up.
    assert "cygrpc" in Path(f"/proc/{proc.pid}/maps").read_text()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


@pytest.mark.parametrize("argv", [[str(BATON), "--help"],
                                  [sys.executable, "-m", "baton_cli", "--help"]])
def test_ctrl_c_while_the_cli_imports_ends_it_quietly(argv, tmp_path):
    done = _interrupted_while_importing(argv, tmp_path)
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


def test_the_cli_does_not_load_the_database_or_schema_libraries():
    """They take ~0.4 s to import, and only the services' stores and validators use
    them: every `baton` command would spend that starting."""
    probe = ("import sys, baton_cli.main, baton_sdk; print(sorted({m.split('.')[0] "
             "for m in sys.modules} & {'sqlalchemy', 'alembic', 'jsonschema', 'asyncpg', "
             "'aiosqlite'}))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    # And what they are used for is still there when asked for.
    done = subprocess.run([sys.executable, "-c", "from baton_core import make_engine, "
                           "ParamsValidator, store_meta_table, schema_problems; print('ok')"],
                          capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "ok", done.stderr
