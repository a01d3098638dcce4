"""Fixtures: the platform (gateway included, auth on) and a grpcurl runner."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

GRPCURL = shutil.which("grpcurl", path=str(Path(sys.executable).parent)) or shutil.which(
    "grpcurl")


class Grpcurl:
    """Runs the real grpcurl binary; JSON output comes back parsed."""

    def __init__(self, binary: str) -> None:
        self.binary = binary

    async def text(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
        done = await asyncio.to_thread(
            subprocess.run, [self.binary, *args], capture_output=True, text=True, timeout=30,
            check=False)
        if ok:
            assert done.returncode == 0, f"grpcurl {' '.join(args)}:\n{done.stderr}"
        return done

    async def call(self, address: str, method: str, data: dict | None = None,
                   headers: dict[str, str] | None = None) -> dict:
        args = ["-plaintext"]
        for key, value in (headers or {}).items():
            args += ["-H", f"{key}: {value}"]
        if data is not None:
            args += ["-d", json.dumps(data)]
        done = await self.text(*args, address, method)
        return json.loads(done.stdout)


@pytest.fixture(scope="session")
def grpcurl() -> Grpcurl:
    assert GRPCURL, "grpcurl is not installed (make install puts it in .venv/bin)"
    return Grpcurl(GRPCURL)
