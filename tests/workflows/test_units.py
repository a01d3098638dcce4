"""Pure pieces: references, the state machine, dependency graphs, page tokens."""

from __future__ import annotations

import asyncio
import time

import pytest

from baton_core import FailedPrecondition
from baton_orchestrator.workflows._config import EngineConfig
from baton_orchestrator.workflows._definition import (
    StepDef,
    ancestor_masks,
    find_cycle,
    topological_order,
)
from baton_orchestrator.workflows._events import EventHub
from baton_orchestrator.workflows._references import (
    BadReference,
    has_reference,
    parse,
    references_in,
    resolve,
)
from baton_orchestrator.workflows._states import (
    CANCELLED,
    FAILED,
    PENDING,
    RUNNING,
    SKIPPED,
    SUCCEEDED,
    advance_run,
    advance_step,
)

SCOPE = {"input": {"n": 2, "items": [{"id": "a"}, {"id": "b"}]},
         "steps": {"create": {"casefile_id": "cf1", "tags": ["x"]}}, "context": {"who": "Ada"}}


def test_a_whole_reference_keeps_the_value_type():
    assert resolve("${input.n}", SCOPE) == 2
    assert resolve("${steps.create.tags}", SCOPE) == ["x"]
    assert resolve({"deep": ["${input.items[1].id}"]}, SCOPE) == {"deep": ["b"]}


def test_references_inside_strings_become_text():
    assert resolve("case ${steps.create.casefile_id} by ${context.who}", SCOPE) == \
        "case cf1 by Ada"
    assert resolve("n=${input.n} tags=${steps.create.tags}", SCOPE) == 'n=2 tags=["x"]'
    assert resolve("price: $${not.this}", SCOPE) == "price: ${not.this}"


@pytest.mark.parametrize(("text", "problem"), [
    ("${input.missing}", "has no 'missing'"),
    ("${input.items[9]}", "has no item [9]"),
    ("${steps.nope.x}", "step output has no 'nope'"),
    ("${input.n.deeper}", "has no 'deeper'"),
])
def test_missing_values_name_the_reference(text, problem):
    with pytest.raises(BadReference) as info:
        resolve(text, SCOPE)
    assert text in str(info.value) and problem in str(info.value)


@pytest.mark.parametrize("text", ["other.x", "steps", "steps.[0]", "input..x", "input.x[",
                                  "input x", ""])
def test_malformed_references_are_refused(text):
    with pytest.raises(BadReference):
        parse(text)


def test_references_are_found_anywhere_and_unterminated_ones_refused():
    found = references_in({"a": ["${input.x}", {"b": "${steps.s1.y[0]}"}], "c": 3})
    assert [(r.root, r.path) for r in found] == [("input", ("x",)), ("steps", ("s1", "y", 0))]
    assert found[1].step_id == "s1"
    assert has_reference(["x", {"y": "${input.z}"}]) and not has_reference({"a": "$${x}"})
    with pytest.raises(BadReference):
        references_in({"a": "${input.x"})


def test_state_machine_allows_only_its_transitions():
    assert advance_step("s", PENDING, RUNNING) == RUNNING
    assert advance_step("s", RUNNING, RUNNING) == RUNNING  # a new attempt
    assert advance_step("s", FAILED, PENDING) == PENDING  # RetryRun
    for current, new in [(SUCCEEDED, RUNNING), (SKIPPED, SUCCEEDED), (CANCELLED, RUNNING),
                         (PENDING, SUCCEEDED)]:
        with pytest.raises(FailedPrecondition) as info:
            advance_step("s", current, new)
        assert info.value.reason == "INVALID_TRANSITION"
    assert advance_run("r", FAILED, PENDING) == PENDING
    with pytest.raises(FailedPrecondition):
        advance_run("r", SUCCEEDED, PENDING)


def _steps(**deps: list[str]) -> tuple[StepDef, ...]:
    return tuple(StepDef(step_id=k, method="m", depends_on=tuple(v)) for k, v in deps.items())


def test_graph_helpers():
    steps = _steps(d=["b", "c"], a=[], b=["a"], c=["a"])
    assert topological_order(steps) == ["a", "b", "c", "d"]
    # bit i: steps[i] (d, a, b, c); d depends on all three, b and c on a
    assert ancestor_masks(steps) == {"a": 0, "b": 0b0010, "c": 0b0010, "d": 0b1110}
    assert ancestor_masks(_steps(a=["b"], b=["a"])) is None
    assert find_cycle(steps) == []
    assert find_cycle(_steps(a=["c"], b=["a"], c=["b"])) in (
        ["a", "c", "b", "a"], ["c", "b", "a", "c"], ["b", "a", "c", "b"])
    assert topological_order(_steps(a=["b"], b=["a"])) is None


async def test_a_watcher_that_took_its_events_waits_for_the_next_commit():
    hub = EventHub()
    with hub.subscribe("run_1") as sub:
        hub.committed([_event("run_1", 1), _event("run_2", 1)])
        assert [e["seq"] for e in sub.take(0)] == [1]
        # What woke it is consumed: wait() now blocks until a new commit (or timeout)
        # instead of returning at once and sending the watcher to the table.
        started = time.monotonic()
        await sub.wait(0.2)
        assert time.monotonic() - started >= 0.15
        assert sub.take(1) == []
        asyncio.get_running_loop().call_later(0.05, hub.committed, [_event("run_1", 2)])
        started = time.monotonic()
        await sub.wait(5.0)
        assert time.monotonic() - started < 2.0
        assert [e["seq"] for e in sub.take(1)] == [2]
        hub.committed([_event("run_1", 4)])
        assert sub.take(2) is None  # a gap: the caller reads the table


def _event(run_id: str, seq: int) -> dict:
    return {"run_id": run_id, "seq": seq, "step_id": "", "run_status": "RUNNING",
            "step_status": None, "attempt": 0, "message": "m", "error": None,
            "replica": "r", "create_time": None}


def test_engine_limits_come_from_the_environment_and_must_be_positive():
    config = EngineConfig.from_env({"BATON_MAX_ACTIVE_RUNS": "300",
                                    "BATON_MAX_STARTING_RUNS": " 8 "})
    assert (config.max_active_runs, config.max_starting_runs) == (300, 8)
    defaults = EngineConfig.from_env({"BATON_MAX_ACTIVE_RUNS": "",
                                      "BATON_MAX_STARTING_RUNS": ""})
    assert (defaults.max_active_runs, defaults.max_starting_runs) == (5000, 16)
    for bad in ("0", "-3", "many", "1.5"):
        with pytest.raises(ValueError, match=f"BATON_MAX_STARTING_RUNS must be .*{bad!r}"):
            EngineConfig.from_env({"BATON_MAX_STARTING_RUNS": bad})


def test_the_drain_can_be_turned_off_with_0_seconds():
    """0 cancels the calls in flight at once at a graceful stop, as a kill would."""
    assert EngineConfig.from_env({"BATON_WORKFLOW_DRAIN_SECONDS": "0"}).drain_seconds == 0
    assert EngineConfig.from_env({"BATON_WORKFLOW_DRAIN_SECONDS": ""}).drain_seconds == 3
    for bad in ("-1", "soon", "nan"):
        with pytest.raises(ValueError, match="BATON_WORKFLOW_DRAIN_SECONDS must be a number "
                                             f"0 or more, not {bad!r}"):
            EngineConfig.from_env({"BATON_WORKFLOW_DRAIN_SECONDS": bad})


def test_a_definitions_plan_is_worked_out_once_and_shared():
    from baton_orchestrator.workflows._definition import WorkflowDef

    steps = (StepDef("a", "m"), StepDef("c", "m", depends_on=("b",)),
             StepDef("b", "m", depends_on=("a",)))
    dag = WorkflowDef(name="w", steps=steps, execution_mode="dag", max_concurrency=2)
    plan = dag.plan()
    assert plan is dag.plan()
    assert plan.order == ("a", "b", "c")
    assert plan.needs == {"a": (), "b": ("a",), "c": ("b",)}
    assert plan.after == {"a": (), "b": (), "c": ()} and plan.limit == 2
    sequential = WorkflowDef(name="w", steps=steps[:1] + steps[2:1:-1])
    assert sequential.plan().after == {"a": (), "b": ("a",)} and sequential.plan().limit == 1
    assert WorkflowDef(name="w", steps=steps, execution_mode="parallel").plan().limit is None


def test_the_same_inline_definition_is_converted_once():
    from baton.orchestrator.v1 import workflows_pb2 as pb
    from baton_orchestrator.workflows import _constants as k
    from baton_orchestrator.workflows._service import WorkflowsServicer
    from baton_sdk import WorkflowBuilder

    servicer = WorkflowsServicer(engine=None)

    def build(value: int) -> pb.Workflow:
        return WorkflowBuilder("w").add_step("demo.echo", {"value": value}, step_id="s").build()

    first = servicer._inline_definition(build(1))
    assert servicer._inline_definition(build(1)) is first
    other = servicer._inline_definition(build(2))
    assert other is not first and other.steps[0].params == {"value": 2}
    for value in range(3, 3 + k.INLINE_DEFINITIONS_KEPT):
        servicer._inline_definition(build(value))
    assert len(servicer._inline) == k.INLINE_DEFINITIONS_KEPT
    assert servicer._inline_definition(build(1)) is not first  # the oldest made room
    large = WorkflowBuilder("w").add_step(
        "demo.echo", {"value": "x" * k.INLINE_DEFINITION_MAX_BYTES}, step_id="s").build()
    assert servicer._inline_definition(large) is not servicer._inline_definition(large)
    assert len(servicer._inline) == k.INLINE_DEFINITIONS_KEPT
