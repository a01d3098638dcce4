"""Retry policies per step (their delays), step timeouts and run timeouts."""

from __future__ import annotations

import itertools
import time

import grpc
import pytest
from google.protobuf import duration_pb2

from baton.orchestrator.v1 import policies_pb2, policies_pb2_grpc
from baton.orchestrator.v1 import workflows_pb2 as pb
from baton_sdk import RetryPolicy, WorkflowBuilder

from .conftest import events_of, run_to_end

S = pb.RunStep
R = pb.Run
UNAVAILABLE = {"message": "try later", "code": "UNAVAILABLE"}


async def attempt_gaps(stub, run_id: str, step_id: str) -> list[float]:
    """Seconds between the RUNNING events of successive attempts of a step."""
    times = [e.create_time.ToNanoseconds() / 1e9 for e in await events_of(stub, run_id)
             if e.step_id == step_id and e.step_status == S.STATUS_RUNNING]
    return [b - a for a, b in itertools.pairwise(times)]


@pytest.mark.parametrize(("strategy", "expected"), [
    ("fixed", [0.1, 0.1, 0.1]),
    ("linear", [0.1, 0.2, 0.3]),
    ("exponential", [0.1, 0.2, 0.4]),
])
async def test_retry_policy_waits_its_delays_between_attempts(stub, strategy, expected):
    policy = RetryPolicy(strategy=strategy, max_attempts=4, initial_delay=0.1, max_delay=5,
                         multiplier=2, retryable_codes=("UNAVAILABLE",))
    wf = WorkflowBuilder(f"retry-{strategy}").add_step("demo.fail", UNAVAILABLE,
                                                       step_id="flaky", retry=policy)
    run, steps = await run_to_end(stub, wf.build())
    assert run.status == R.STATUS_FAILED
    assert steps["flaky"].attempts == 4
    assert steps["flaky"].error.code == "UNAVAILABLE"
    gaps = await attempt_gaps(stub, run.run_id, "flaky")
    assert len(gaps) == 3
    for gap, want in zip(gaps, expected, strict=True):
        assert want <= gap < want + 0.15, (strategy, gaps)


async def test_max_delay_caps_the_backoff(stub):
    policy = RetryPolicy(strategy="exponential", max_attempts=4, initial_delay=0.1,
                         max_delay=0.15, multiplier=3)
    wf = WorkflowBuilder("capped").add_step("demo.fail", UNAVAILABLE, step_id="f",
                                            retry=policy)
    run, _ = await run_to_end(stub, wf.build())
    gaps = await attempt_gaps(stub, run.run_id, "f")
    assert all(g < 0.15 + 0.12 for g in gaps) and gaps[-1] >= 0.15


async def test_strategy_none_makes_one_attempt(stub):
    wf = WorkflowBuilder("none").add_step("demo.fail", UNAVAILABLE, step_id="f",
                                          retry=RetryPolicy.never())
    _, steps = await run_to_end(stub, wf.build())
    assert steps["f"].attempts == 1


async def test_codes_outside_the_policy_are_not_retried(stub):
    policy = RetryPolicy(strategy="fixed", max_attempts=5, initial_delay=0.01,
                         retryable_codes=("UNAVAILABLE",))
    wf = WorkflowBuilder("notretried").add_step(
        "demo.fail", {"message": "bad", "code": "FAILED_PRECONDITION"}, step_id="f",
        retry=policy)
    _, steps = await run_to_end(stub, wf.build())
    assert steps["f"].attempts == 1 and steps["f"].error.code == "FAILED_PRECONDITION"


async def test_step_timeout_fails_the_attempt_with_deadline_exceeded(stub):
    wf = (WorkflowBuilder("steptimeout")
          .add_step("demo.sleep", {"seconds": 10}, step_id="slow", timeout=0.3,
                    retry=RetryPolicy.never())
          .add_step("demo.echo", {"value": 1}, step_id="after"))
    began = time.monotonic()
    run, steps = await run_to_end(stub, wf.build())
    assert time.monotonic() - began < 3
    assert run.status == R.STATUS_FAILED
    assert steps["slow"].status == S.STATUS_FAILED
    assert steps["slow"].error.code == "DEADLINE_EXCEEDED"
    assert steps["after"].status == S.STATUS_SKIPPED


async def test_run_timeout_ends_the_run_and_its_steps(stub):
    wf = (WorkflowBuilder("runtimeout").with_timeout(0.5)
          .add_step("demo.echo", {"value": 1}, step_id="quick")
          .add_step("demo.sleep", {"seconds": 10}, step_id="slow")
          .add_step("demo.echo", {"value": 2}, step_id="never"))
    began = time.monotonic()
    run, steps = await run_to_end(stub, wf.build())
    assert time.monotonic() - began < 3
    assert run.status == R.STATUS_FAILED
    assert run.error.reason == "RUN_TIMEOUT" and run.error.code == "DEADLINE_EXCEEDED"
    assert steps["quick"].status == S.STATUS_SUCCEEDED
    assert steps["slow"].status == S.STATUS_FAILED
    assert steps["never"].status == S.STATUS_SKIPPED


async def test_run_timeout_also_cuts_a_retry_wait_short(stub):
    policy = RetryPolicy(strategy="fixed", max_attempts=10, initial_delay=0.3)
    wf = (WorkflowBuilder("retrytimeout").with_timeout(0.5)
          .add_step("demo.fail", UNAVAILABLE, step_id="f", retry=policy))
    began = time.monotonic()
    run, _ = await run_to_end(stub, wf.build())
    assert run.status == R.STATUS_FAILED and time.monotonic() - began < 2.5



async def test_a_run_timeout_bounds_a_step_but_never_lifts_its_default_timeout(
        stub, orchestrator):
    # The step sets no timeout, so the policy's default (0.3 s) applies; the run's
    # timeout (10 s) only bounds it. It used to replace it.
    channel = grpc.aio.insecure_channel(orchestrator.address)
    policies = policies_pb2_grpc.PolicyEngineStub(channel)
    name = f"wf-default-timeout-{orchestrator.backend}"
    await policies.CreatePolicy(policies_pb2.CreatePolicyRequest(policy=policies_pb2.Policy(
        name=name, pattern="demo.sleep", default_timeout=duration_pb2.Duration(
            nanos=300_000_000))))
    try:
        wf = (WorkflowBuilder("runbound").with_timeout(10)
              .add_step("demo.sleep", {"seconds": 3}, step_id="slow",
                        retry=RetryPolicy.never()))
        began = time.monotonic()
        run, steps = await run_to_end(stub, wf.build())
        assert time.monotonic() - began < 2.5
        assert steps["slow"].error.code == "DEADLINE_EXCEEDED"
        assert run.error.reason != "RUN_TIMEOUT"
    finally:
        await policies.DeletePolicy(policies_pb2.DeletePolicyRequest(name=name))
        await channel.close()
