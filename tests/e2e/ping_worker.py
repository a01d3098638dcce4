"""A one-method worker the e2e tests can kill: `python ping_worker.py LISTEN NAME`."""

from __future__ import annotations

import asyncio
import os
import sys

from pydantic import BaseModel

from baton_sdk import Worker, method


class PingIn(BaseModel):
    text: str = "ping"


class PingOut(BaseModel):
    text: str
    pid: int


def build(name: str):
    @method(name=name, version="1.0.0", description="Answers with the text and its pid.")
    async def ping(params: PingIn) -> PingOut:
        return PingOut(text=params.text, pid=os.getpid())

    return ping


async def main(listen: str, name: str) -> None:
    await Worker(methods=[build(name)], listen=listen,
                 registry_addr=os.environ["BATON_REGISTRY_ADDR"], lease_ttl=2.0).run()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
