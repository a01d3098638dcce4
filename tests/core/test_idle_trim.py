"""Every server trims its heap once after a busy spell, and never while idle."""

from __future__ import annotations

import asyncio
import time

from baton_core._memory import IdleTrim, trim_when_idle


def test_a_busy_spell_then_a_quiet_interval_trims_once():
    decide = IdleTrim(busy=0.10, idle=0.03)
    assert not decide.trim_now(0.001, 1.0)  # idle from the start: nothing to give back
    assert not decide.trim_now(0.5, 1.0)  # busy
    assert not decide.trim_now(0.05, 1.0)  # quieter, not yet idle
    assert decide.trim_now(0.01, 1.0)  # idle after busy: trim
    assert not decide.trim_now(0.01, 1.0)  # once
    assert not decide.trim_now(0.2, 1.0)
    assert decide.trim_now(0.0, 1.0)  # the next spell
    assert not decide.trim_now(0.0, 0.0)


async def test_the_server_task_trims_after_cpu_work_ends():
    trims: list[float] = []
    # Low shares: other threads of the test process may use some CPU meanwhile, and on
    # a loaded machine the busy spell may get well under a core.
    task = asyncio.create_task(trim_when_idle(lambda: trims.append(time.monotonic()),
                                              interval=0.1, decide=IdleTrim(0.3, 0.15)))
    try:
        await asyncio.sleep(0.35)
        before = len(trims)
        busy_until = time.monotonic() + 0.5
        while time.monotonic() < busy_until:  # a busy spell (the loop is blocked)
            sum(range(10_000))
        await asyncio.sleep(0.6)
        assert len(trims) == before + 1 and trims[-1] > busy_until
    finally:
        task.cancel()
