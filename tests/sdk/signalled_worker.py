"""A worker the process tests signal: `python signalled_worker.py HOW`.

HOW is how the worker is run: `run` (Worker.run() under asyncio.run, as the
example worker does), `async-with` (`async with Worker(...)` under
asyncio.run) or `run-until-complete` (`async with` on a loop run by hand,
where Python's default SIGINT handler raises KeyboardInterrupt wherever the
main thread is). It listens on a free port and logs to stderr, the address
included, and a line when a method starts.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time

from pydantic import BaseModel

from baton_core import configure_logging
from baton_sdk import Worker, method

log = logging.getLogger("baton.test")


class Seconds(BaseModel):
    seconds: float = 0.0


@method("proc.nap", description="Sleeps.")
async def nap(params: Seconds) -> Seconds:
    log.info("napping")
    await asyncio.sleep(params.seconds)
    return params


@method("proc.spin", description="Keeps the event loop's thread busy in Python code.")
async def spin(params: Seconds) -> Seconds:
    log.info("spinning")
    until = time.monotonic() + params.seconds
    while time.monotonic() < until:
        pass
    return params


@method("proc.interrupt", description="Raises KeyboardInterrupt itself.")
async def interrupt(params: Seconds) -> Seconds:
    raise KeyboardInterrupt


def worker() -> Worker:
    return Worker([nap, spin, interrupt], registry_addr=None, shutdown_grace=0.5)


async def serve_until_cancelled() -> None:
    async with worker():
        await asyncio.Event().wait()


def main(how: str) -> None:
    configure_logging("INFO")
    if how == "run":
        asyncio.run(worker().run())
    elif how == "async-with":
        asyncio.run(serve_until_cancelled())
    elif how == "run-until-complete":
        asyncio.new_event_loop().run_until_complete(serve_until_cancelled())
    else:
        raise SystemExit(f"unknown HOW {how!r}")


if __name__ == "__main__":
    main(sys.argv[1])
