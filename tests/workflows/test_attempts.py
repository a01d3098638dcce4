"""Which retry policy bounds a step resumed after a crash, and when it has no
call left: one past its last allowed attempt (the crash itself:
test_interrupted_attempts)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest

from baton_core import Unavailable
from baton_orchestrator._dispatch import Dispatcher
from baton_orchestrator._method_cache import MethodCache
from baton_orchestrator._policies import Policy, PolicyBook
from baton_orchestrator._retry import Retry
from baton_orchestrator.workflows._attempts import ExecutorContext, StepAttempts
from baton_orchestrator.workflows._definition import StepDef, WorkflowDef
from baton_orchestrator.workflows._records import Recorder, RunState, StepState
from baton_orchestrator.workflows._states import RUNNING
from baton_orchestrator.workflows._writer import Writer

TWO = {"strategy": "STRATEGY_FIXED", "maxAttempts": 2}


class Cache:
    """The method cache's lookups: `methods` by name, or `down` raised by get()
    (the registry cannot be asked) for those it does not hold yet."""

    def __init__(self, methods: dict[str, Retry], down: Exception | None = None) -> None:
        self._methods = {n: SimpleNamespace(retry=r) for n, r in methods.items()}
        self._down = down
        self.asked: list[str] = []

    def peek(self, name: str) -> Any:
        return self._methods.get(name)

    async def get(self, name: str) -> Any:
        self.asked.append(name)
        if self._down is not None:
            raise self._down
        return self._methods.get(name)


def attempts(*, retry: dict[str, Any] | None = None, cache: Cache | None = None,
             policies: list[Policy] | None = None) -> StepAttempts:
    defn = WorkflowDef(name="wf", steps=(StepDef("s", "m.call", retry=retry),))
    state = RunState(run_id="run_1", definition=defn)
    # Test doubles: what is asked here reads only the cache and the policies.
    ctx = ExecutorContext(writer=cast(Writer, None), dispatcher=cast(Dispatcher, None),
                          cache=cast(MethodCache, cache or Cache({})),
                          policies=PolicyBook(policies or []), sessions=None, replica="r",
                          default_concurrency=1)
    return StepAttempts(ctx, state, Recorder(state, "r"), lambda message: None)


def in_flight(attempt: int, first_attempt: int = 1) -> StepState:
    return StepState(step_id="s", position=0, method="m.call", status=RUNNING,
                     attempts=attempt, first_attempt=first_attempt)


async def test_an_interrupted_attempt_ends_the_step_only_past_the_last_allowed():
    calls = attempts(retry=TWO)
    assert await calls.interrupted_last(in_flight(1)) is None
    # Interrupted on the last allowed attempt: it earns one call more.
    assert await calls.interrupted_last(in_flight(2)) is None
    error = await calls.interrupted_last(in_flight(3))
    assert error is not None
    assert (error["code"], error["reason"]) == ("ABORTED", "LAST_ATTEMPT_INTERRUPTED")
    assert error["message"].startswith(
        "the orchestrator stopped during attempt 3, the one made after it stopped during "
        "the last its retry policy allows (max_attempts 2)")
    # A policy shrunk since: no call left either.
    assert await calls.interrupted_last(in_flight(4)) is not None


async def test_a_retried_run_counts_attempts_from_its_retry():
    calls = attempts(retry=TWO)
    assert await calls.interrupted_last(in_flight(4, first_attempt=3)) is None
    error = await calls.interrupted_last(in_flight(5, first_attempt=3))
    assert error is not None
    assert "(max_attempts 2, counted from attempt 3 when the run was retried)" \
        in error["message"]


@pytest.mark.parametrize("retry", [{"strategy": "STRATEGY_NONE"},
                                   {"strategy": "STRATEGY_NONE", "maxAttempts": 5},
                                   {"maxAttempts": 1}])
async def test_a_policy_of_one_attempt_leaves_one_call_to_resume(retry):
    assert await attempts(retry=retry).interrupted_last(in_flight(1)) is None
    assert await attempts(retry=retry).interrupted_last(in_flight(2)) is not None


async def test_the_steps_policy_comes_first_then_the_policys_then_the_methods():
    three = Retry(max_attempts=3)
    once = Retry(strategy="none", max_attempts=1)
    cache = Cache({"m.call": once})
    policy = Policy(name="p", pattern="m.*", retry=three)
    assert await attempts(retry=TWO, cache=cache, policies=[policy]).interrupted_last(
        in_flight(3)) is not None
    assert await attempts(cache=cache, policies=[policy]).interrupted_last(in_flight(3)) is None
    assert await attempts(cache=cache).interrupted_last(in_flight(2)) is not None
    assert cache.asked == ["m.call"]  # only when neither the step nor a policy has one


async def test_a_step_whose_policy_cannot_be_known_is_resumed():
    # Unknown method, or no registry to ask: the resumed call cannot go out either.
    assert await attempts(cache=Cache({})).interrupted_last(in_flight(5)) is None
    down = Cache({}, Unavailable("registry down"))
    assert await attempts(cache=down).interrupted_last(in_flight(5)) is None
    assert down.asked == ["m.call"]
