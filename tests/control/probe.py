"""A worker whose methods live under a prefix of the test's own, served in-process,
so that each test has operations (and policies) nobody else touches."""

from __future__ import annotations

import asyncio
from collections import Counter

from pydantic import BaseModel

from baton_core import Unavailable
from baton_sdk import InvocationContext, RetryPolicy, Worker, method


class EchoIn(BaseModel):
    value: str = "hi"


class EchoOut(BaseModel):
    value: str
    count: int
    hook_context: dict = {}


class SleepIn(BaseModel):
    seconds: float = 0.5


class Slept(BaseModel):
    seconds: float


class Probe:
    """`<prefix>.echo` counts its executions and fails while `failing` is set;
    `<prefix>.sleep` sleeps."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.calls: Counter[str] = Counter()
        self.keys: list[str] = []  # the idempotency key of each echo execution
        self.failing = False
        self.worker: Worker | None = None

    @property
    def echo(self) -> str:
        return f"{self.prefix}.echo"

    @property
    def sleep(self) -> str:
        return f"{self.prefix}.sleep"

    def methods(self) -> list:
        @method(self.echo, retry=RetryPolicy.never())
        async def echo(params: EchoIn, ctx: InvocationContext) -> EchoOut:
            self.calls["echo"] += 1
            self.keys.append(ctx.idempotency_key)
            if self.failing:
                raise Unavailable(f"{self.prefix} is failing on purpose")
            return EchoOut(value=params.value, count=self.calls["echo"],
                           hook_context=ctx.hook_context)

        @method(self.sleep, retry=RetryPolicy.never())
        async def sleep(params: SleepIn) -> Slept:
            self.calls["sleep"] += 1
            await asyncio.sleep(params.seconds)
            return Slept(seconds=params.seconds)

        return [echo, sleep]

    async def start(self, registry_addr: str, token: str) -> None:
        self.worker = Worker(self.methods(), registry_addr=registry_addr, token=token,
                             lease_ttl=5.0)
        await self.worker.start()

    async def stop(self) -> None:
        if self.worker is not None:
            await self.worker.stop()
