"""The whole platform as `baton up` starts it, gateway included, on free ports.

Shared by the gateway and grpcurl suites: one per backend, the session fixture
`running` of tests/conftest.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from baton_cli._gateway import REPO_ROOT
from baton_cli._up import Platform, PlatformConfig
from baton_core import constants as c
from baton_core import free_port

SERVICES = ("registry", "orchestrator", "sessions")
# The ports the README's commands are written for (`baton up` defaults).
DEFAULT_PORTS = {"registry": c.REGISTRY_PORT, "orchestrator": c.ORCHESTRATOR_PORT,
                 "sessions": c.SESSIONS_PORT, "worker": c.WORKER_PORT,
                 "gateway": c.GATEWAY_PORT}


@dataclass
class RunningPlatform:
    platform: Platform
    ports: Mapping[str, int]
    # The conftest's AuthKeys when the services run with auth on, else None.
    auth: Any = None

    def addr(self, name: str) -> str:
        return f"127.0.0.1:{self.ports[name]}"

    def token(self, subject: str = "tester", roles=("admin",), **kwargs) -> str:
        assert self.auth is not None, "this platform runs with auth off"
        return self.auth.token(subject, roles, **kwargs)

    def headers(self, subject: str = "tester", roles=("admin",), **kwargs) -> dict[str, str]:
        """`authorization: Bearer <fresh token>` with auth on, nothing with it off."""
        if self.auth is None:
            return {}
        return {"authorization": f"Bearer {self.token(subject, roles, **kwargs)}"}

    @property
    def http(self) -> str:
        return f"http://{self.addr('gateway')}"


@asynccontextmanager
async def platform_running(databases, redis_url: str, data_dir: Path,
                           auth: Any = None) -> AsyncIterator[RunningPlatform]:
    """Runs `baton up`'s Platform on free ports with the backend's databases;
    with `auth` (the conftest's AuthKeys) every service runs with auth on."""
    ports = {name: free_port() for name in DEFAULT_PORTS}
    config = PlatformConfig(
        data_dir=data_dir, registry_port=ports["registry"],
        orchestrator_port=ports["orchestrator"], sessions_port=ports["sessions"],
        worker_port=ports["worker"], gateway_port=ports["gateway"], redis_url=redis_url)
    # Platform reads per-service database URLs from the environment, as
    # `baton up` does; children copy it when they start.
    urls = {f"BATON_{kind.upper()}_DATABASE_URL": await databases.new_url_async(kind)
            for kind in SERVICES}
    # With auth on, `baton up` also mints the example worker's token from these.
    urls.update(auth.env() if auth is not None else {})
    saved = {key: os.environ.get(key) for key in urls}
    log = data_dir / "baton-up.log"
    platform = Platform(config, out=log.open("w"))
    os.environ.update(urls)
    try:
        await asyncio.to_thread(platform.start)
    except SystemExit as exc:  # Platform.start gives up the way a CLI does
        raise RuntimeError(f"baton up failed:\n{log.read_text()}") from exc
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    try:
        running = RunningPlatform(platform, ports, auth)
        await wait_for_method(running, "casefile.create")
        yield running
    finally:
        await asyncio.to_thread(platform.stop)
        platform.out.close()


async def wait_for_method(running: RunningPlatform, name: str, timeout: float = 20.0) -> dict:
    """Reads GET /v1/methods:watch (NDJSON) until `name` has a live endpoint."""
    async with httpx.AsyncClient(base_url=running.http, timeout=timeout,
                                 headers=running.headers()) as client:
        async with client.stream("GET", "/v1/methods:watch") as reply:
            assert reply.status_code == 200, await reply.aread()
            deadline = time.monotonic() + timeout
            async for line in reply.aiter_lines():
                event = json.loads(line) if line else {}
                method = event.get("method") or {}
                if method.get("name") == name and any(
                        e["state"] == "STATE_AVAILABLE" for e in method["endpoints"]):
                    return method
                if time.monotonic() > deadline:
                    break
    raise AssertionError(f"{name} never became available")


# --- README sections, run as written --------------------------------------

README = REPO_ROOT / "README.md"
_FENCE = re.compile(r"^```sh\n(.*?)^```$", re.S | re.M)


def readme_blocks(heading: str) -> list[str]:
    """The ```sh blocks under `## heading`, up to the next `## `."""
    text = README.read_text()
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return _FENCE.findall(text[start:end if end != -1 else len(text)])


def localize(block: str, running: RunningPlatform) -> str:
    """Swaps each `localhost:<default port>` for the port the tests use."""
    by_default = {str(port): name for name, port in DEFAULT_PORTS.items()}

    def swap(match: re.Match) -> str:
        name = by_default.get(match.group(1))
        assert name, f"README uses localhost:{match.group(1)}, which baton up does not serve"
        return running.addr(name)

    return re.sub(r"\blocalhost:(\d+)\b", swap, block)


def token_command() -> str:
    """The Quick start's `export BATON_TOKEN=$(...)` line, as written."""
    text = README.read_text()
    start = text.index("\n## Quick start\n")
    section = text[start:text.find("\n## ", start + 1)]
    (line,) = [line.split(" #")[0].strip() for block in _FENCE.findall(section)
               for line in block.splitlines() if line.startswith("export BATON_TOKEN=")]
    return line


def run_blocks(blocks: list[str], running: RunningPlatform, timeout: float = 90.0) -> list[str]:
    """Runs the blocks in one bash (so variables carry over); returns each one's output.

    With auth on, the shell first runs the Quick start's `export BATON_TOKEN=...`
    line as written: `baton token` signs an admin token with the platform's
    secret, which it finds in the environment (BATON_JWT_SECRET) as a user's
    shell would find it under the data directory of `baton up`."""
    marker = "::readme-block::"
    env = dict(os.environ)
    prelude = ""
    if running.auth is not None:
        env.update(running.auth.env())
        prelude = f'{token_command()}\ntest -n "$BATON_TOKEN"\n'
    script = "set -euo pipefail\n" + prelude + "".join(
        f"echo '{marker}'\n{localize(block, running)}\necho\n" for block in blocks)
    done = subprocess.run(["bash", "-c", script], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=timeout, check=False, env=env)
    assert done.returncode == 0, f"README commands failed:\n{done.stdout}\n{done.stderr}"
    outputs = done.stdout.split(marker + "\n")[1:]
    assert len(outputs) == len(blocks)
    return outputs


def json_values(text: str) -> list:
    """Every JSON value in `text`: curl prints bodies back to back, streams one per line."""
    decoder, at = json.JSONDecoder(), 0
    values: list[Any] = []
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at == len(text):
            return values
        value, at = decoder.raw_decode(text, at)
        values.append(value)


NO_JQ = "the README's commands use jq, which is not installed"
HAVE_JQ = shutil.which("jq") is not None
