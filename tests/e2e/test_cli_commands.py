"""`baton dispatch`, `baton methods ...` and `baton sessions ...` against the platform,
each told where its service is by an option (no BATON_*_ADDR in the environment)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

from baton.registry.v1 import registry_pb2

from .test_dispatch import wait_for_method


async def _baton(*args: str) -> tuple[int, object, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_ADDR")}
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "baton_cli", *args], env=env,
        capture_output=True, text=True, timeout=60)
    out = json.loads(done.stdout) if done.returncode == 0 else None
    return done.returncode, out, done.stderr


async def test_the_cli_reaches_each_service_at_the_address_it_is_given(platform, registry):
    await wait_for_method(registry, "casefile.create")
    addrs = platform.addrs
    code, session, err = await _baton("sessions", "create", "--user", "cli-user",
                                      "--sessions", addrs["sessions"])
    assert code == 0, err
    assert session["user_id"] == "cli-user" and session["status"] == "STATUS_ACTIVE"
    session_id = session["session_id"]
    code, reply, err = await _baton("dispatch", "casefile.create", "--params",
                                    '{"title": "From the CLI"}', "--session", session_id,
                                    "--orchestrator", addrs["orchestrator"])
    assert code == 0, err
    assert reply["result"]["casefile_id"] and reply["metadata"]["attempts"] == 1
    code, history, err = await _baton("sessions", "history", session_id,
                                      "--sessions", addrs["sessions"])
    assert code == 0, err
    assert [e["operation"] for e in history["executions"]] == ["casefile.create"]
    replies = [await _baton("dispatch", "casefile.create", "--params", '{"title": "Once"}',
                            "--idempotency-key", f"cli-{session_id}",
                            "--orchestrator", addrs["orchestrator"]) for _ in range(2)]
    assert [code for code, _, _ in replies] == [0, 0], replies
    first, again = (reply for _, reply, _ in replies)
    assert again["metadata"]["replayed"] and again["result"] == first["result"]
    code, listed, err = await _baton("sessions", "list", "--user", "cli-user", "--active",
                                     "--sessions", addrs["sessions"])
    assert code == 0, err
    assert [s["session_id"] for s in listed["sessions"]] == [session_id]
    code, closed, err = await _baton("sessions", "close", session_id,
                                     "--sessions", addrs["sessions"])
    assert code == 0 and closed["status"] == "STATUS_CLOSED", err
    code, _, err = await _baton("dispatch", "casefile.create", "--params", '{"title": "Late"}',
                                "--session", session_id, "--orchestrator", addrs["orchestrator"])
    assert code == 1
    assert err.splitlines()[0] == f"error: FAILED_PRECONDITION: session {session_id!r} is CLOSED"
    code, method, err = await _baton("methods", "get", "casefile.create",
                                     "--registry", addrs["registry"])
    assert code == 0, err
    assert method["name"] == "casefile.create" and method["input_schema"]["required"] == ["title"]
    code, listed, err = await _baton("methods", "list", "--domain", "casefile",
                                     "--registry", addrs["registry"])
    assert code == 0, err
    assert "casefile.create" in [m["name"] for m in listed["methods"]]
    code, listed, err = await _baton("methods", "list", "--domain", "no_such_domain",
                                     "--registry", addrs["registry"])
    assert code == 0, err
    assert listed == {"methods": [], "next_page_token": ""}
    code, found, err = await _baton("methods", "search", "casefile notes",
                                    "--registry", addrs["registry"])
    assert code == 0, err
    assert "casefile.add_note" in [r["method"]["name"] for r in found]
    await registry.RegisterMethod(registry_pb2.RegisterMethodRequest(
        method=registry_pb2.Method(name="cli.throwaway", version="1.0.0")))
    env = {k: v for k, v in os.environ.items() if not k.endswith("_ADDR")}
    for expected, stream in ((0, "deleted cli.throwaway"), (1, "error: NOT_FOUND: ")):
        done = await asyncio.to_thread(subprocess.run, [
            sys.executable, "-m", "baton_cli", "methods", "delete", "cli.throwaway",
            "--registry", addrs["registry"]], env=env, capture_output=True, text=True,
            timeout=60)
        assert done.returncode == expected
        assert (done.stdout if expected == 0 else done.stderr).startswith(stream), done.stderr


async def test_a_service_that_is_not_there_is_one_line_and_exit_1(platform):
    code, _, err = await _baton("sessions", "get", "nope", "--sessions",
                                platform.addrs["orchestrator"].rsplit(":", 1)[0] + ":1")
    assert code == 1
    assert err.startswith("error: UNAVAILABLE:") and "Traceback" not in err
    assert err.splitlines()[1].startswith("hint: is the platform running (`baton up`)?")
    code, _, err = await _baton("sessions", "get", "nope",
                                "--sessions", platform.addrs["sessions"])
    assert code == 1 and err.startswith("error: NOT_FOUND: session 'nope' not found"), err


async def test_the_wrong_service_at_an_address_gets_a_hint_about_the_port(platform):
    # The orchestrator's port, given as the sessions service's.
    code, _, err = await _baton("sessions", "get", "nope", "--sessions",
                                platform.addrs["orchestrator"])
    assert code == 1
    assert err.startswith("error: UNIMPLEMENTED:") and "Traceback" not in err
    assert err.splitlines()[1].startswith("hint: that address answers gRPC but does not "
                                          "serve this service: is it the right port?")


async def test_a_token_no_header_can_carry_is_one_line_and_exit_2(platform):
    # Pasted with a line break or a non-ASCII character, the token failed inside
    # gRPC: a traceback from the SDK's channel.
    for token in ("eyJhbGciOi\nJIUzI1NiJ9", "tokén"):
        env = {**os.environ, "BATON_TOKEN": token}
        done = await asyncio.to_thread(subprocess.run, [
            sys.executable, "-m", "baton_cli", "sessions", "get", "nope",
            "--sessions", platform.addrs["sessions"]], env=env, capture_output=True,
            text=True, timeout=60)
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith("error: $BATON_TOKEN holds a line break"), done.stderr
        assert len(done.stderr.splitlines()) == 1 and "Traceback" not in done.stderr
