"""`baton token`, `baton apikey` and `baton up` with key files they cannot use: one
line and exit 2, nothing written, nothing started."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from baton_cli.main import app
from baton_core import free_port

ENV = {k: v for k, v in os.environ.items()
       if not k.startswith("BATON_JWT") and k not in ("BATON_AUTH", "REDIS_URL")}


def baton(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "baton_cli", *args], capture_output=True,
                          text=True, env={**ENV, **env}, timeout=60)


def test_a_ttl_beyond_ten_years_is_a_usage_error_not_a_traceback(tmp_path):
    (tmp_path / "jwt-secret").write_text("s" * 32)
    for ttl in ("inf", "1e400", "315360001"):
        result = CliRunner().invoke(app, ["token", "--role", "admin", "--ttl", ttl,
                                          "--data-dir", str(tmp_path)], env=ENV)
        said = " ".join(result.output.replace("│", " ").split())
        assert result.exit_code == 2, said
        assert "Invalid value for '--ttl'" in said and "Traceback" not in said


def test_a_key_file_that_cannot_be_read_or_used_is_one_line_and_exit_2(tmp_path):
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfe\x00")
    not_a_key = tmp_path / "not-a-key.pem"
    not_a_key.write_text("not a PEM key\n")
    for env, says in (
            ({"BATON_JWT_SECRET_FILE": str(tmp_path / "missing")},
             f"BATON_JWT_SECRET_FILE={tmp_path / 'missing'}: cannot be read: "
             "No such file or directory"),
            ({"BATON_JWT_SECRET_FILE": str(binary)},
             f"BATON_JWT_SECRET_FILE={binary}: cannot be read: not UTF-8 text"),
            ({"BATON_JWT_PRIVATE_KEY_FILE": str(not_a_key)},
             "BATON_JWT_PRIVATE_KEY_FILE: cannot sign with it")):
        done = baton("token", "--role", "admin", "--data-dir", str(tmp_path), **env)
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith("baton: ") and says in done.stderr, done.stderr
        assert len(done.stderr.splitlines()) == 1 and not done.stdout


def test_up_with_a_secret_file_it_cannot_read_starts_nothing(tmp_path):
    data = tmp_path / "data"
    args = ["up", "--data-dir", str(data), "--no-gateway"]
    for name in ("registry", "orchestrator", "sessions", "worker"):
        args += [f"--{name}-port", str(free_port())]
    done = baton(*args, BATON_JWT_SECRET_FILE=str(tmp_path / "missing"))
    assert done.returncode == 2, done.stdout + done.stderr
    assert (f"BATON_JWT_SECRET_FILE={tmp_path / 'missing'}: cannot be read: "
            "No such file or directory") in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert not (data / "redis").exists() and not (data / "logs").exists()


def test_a_keys_file_that_cannot_be_written_is_a_usage_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = CliRunner().invoke(app, ["apikey", "create", "--subject", "ci", "--role",
                                      "worker", "--file", str(blocker / "keys.yaml")])
    said = " ".join(result.output.replace("│", " ").split())
    assert result.exit_code == 2, said
    assert "Invalid value for --file: cannot write " in said and "nothing was written" in said
    assert "bk_" not in said  # no key is shown that was never stored


def test_a_keys_file_is_replaced_whole_and_keeps_its_keys(tmp_path):
    keys = tmp_path / "keys.yaml"
    for subject in ("alice", "bob"):
        made = CliRunner().invoke(app, ["apikey", "create", "--subject", subject, "--role",
                                        "user", "--file", str(keys)])
        assert made.exit_code == 0, made.output
    listed = CliRunner().invoke(app, ["apikey", "list", "--file", str(keys)])
    assert [line.split("\t")[0] for line in listed.output.splitlines()] == ["alice", "bob"]
    assert sorted(p.name for p in Path(tmp_path).iterdir()) == ["keys.yaml"]
