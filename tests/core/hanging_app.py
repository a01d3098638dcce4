"""A service whose stop never ends, run by test_stop_watchdog.py: run_app's
watchdog must end it. Prints "serving" once it listens."""

from __future__ import annotations

import asyncio
import sys

from baton_core import run_app


class HangingApp:
    def services(self):
        return []

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        await never_ends()


async def never_ends() -> None:
    await asyncio.Event().wait()


async def main(port: str) -> None:
    async def announce() -> None:
        await asyncio.sleep(0.5)
        print("serving", flush=True)

    task = asyncio.get_running_loop().create_task(announce())
    await run_app(HangingApp(), f"127.0.0.1:{port}", grace=0.1, drain=0.0, stop_margin=0.5)
    task.cancel()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
