"""StartRun checks the roles each step's policy requires, with auth on."""

from __future__ import annotations

import asyncio
import contextlib
import time

import grpc
import pytest

from baton.orchestrator.v1 import orchestrator_pb2, workflows_pb2_grpc
from baton.orchestrator.v1 import workflows_pb2 as pb
from baton_core import from_rpc_error
from baton_sdk import WorkflowBuilder

R = pb.Run
POLICIES = """
policies:
  - name: wf-restricted-sleep
    pattern: "demo.sleep"
    required_roles: [operator]
  - name: wf-restricted-create
    pattern: "casefile.create"
    required_roles: [operator]
"""


@contextlib.asynccontextmanager
async def secured_orchestrator(cluster, auth_keys, url: str, tmp_path):
    policies = tmp_path / "policies.yaml"
    policies.write_text(POLICIES)
    child, address = cluster.orchestrator_process(
        f"wf-auth-{time.time_ns()}", url,
        {**auth_keys.env(), "BATON_POLICIES_FILE": str(policies)})
    await asyncio.to_thread(child.start)
    channel = grpc.aio.insecure_channel(address)
    try:
        yield workflows_pb2_grpc.WorkflowsStub(channel)
    finally:
        await channel.close()
        await asyncio.to_thread(child.stop)


def workflow() -> pb.Workflow:
    return (WorkflowBuilder("guarded")
            .add_step("demo.echo", {"value": 1}, step_id="open")
            .add_step("demo.sleep", {"seconds": 0}, step_id="nap")
            .add_step("casefile.create", {"title": "t"}, step_id="create")
            .build())


async def start_when_ready(stub, request, metadata, timeout: float = 20.0) -> pb.Run:
    """StartRun, waiting out the moments before the new process knows the methods."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return (await stub.StartRun(request, metadata=metadata)).run
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.INVALID_ARGUMENT or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def test_start_run_requires_every_steps_roles(cluster, auth_keys, database_url,
                                                    tmp_path):
    async with secured_orchestrator(cluster, auth_keys, database_url, tmp_path) as stub:
        carol = auth_keys.bearer("carol", ["operator"])
        run = await start_when_ready(stub, pb.StartRunRequest(definition=workflow()), carol)
        assert (await wait_run_as(stub, run.run_id, carol)).status == R.STATUS_SUCCEEDED

        bob = auth_keys.bearer("bob", ["user"])
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.StartRun(pb.StartRunRequest(definition=workflow(), request_id="bob-1"),
                                metadata=bob)
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
        err = from_rpc_error(caught.value)
        assert err.reason == "POLICY_ROLE_REQUIRED"
        assert err.metadata["steps"] == "nap,create"
        assert "nap" in err.message and "create" in err.message and "open" not in err.message
        # No run was created.
        runs = (await stub.ListRuns(pb.ListRunsRequest(), metadata=carol)).runs
        assert [r.run_id for r in runs] == [run.run_id]

        # A run of permitted steps only is fine for bob.
        only_open = WorkflowBuilder("open").add_step("demo.echo", {"value": 1},
                                                     step_id="open").build()
        allowed = (await stub.StartRun(pb.StartRunRequest(definition=only_open),
                                       metadata=bob)).run
        assert (await wait_run_as(stub, allowed.run_id, bob)).status == R.STATUS_SUCCEEDED


async def test_idempotency_key_is_per_actor(cluster, auth_keys, database_url, tmp_path):
    async with secured_orchestrator(cluster, auth_keys, database_url, tmp_path) as stub:
        only_open = WorkflowBuilder("open").add_step("demo.echo", {"value": 1},
                                                     step_id="open").build()
        request = pb.StartRunRequest(definition=only_open, directives=orchestrator_pb2.Directives(
            idempotency_key="same"))
        bob = auth_keys.bearer("bob", ["user"])
        dave = auth_keys.bearer("dave", ["user"])
        first = await start_when_ready(stub, request, bob)
        assert (await stub.StartRun(request, metadata=bob)).run.run_id == first.run_id
        other = (await stub.StartRun(request, metadata=dave)).run
        assert other.run_id != first.run_id


async def wait_run_as(stub, run_id: str, metadata, timeout: float = 30.0) -> pb.Run:
    async def follow():
        async for _ in stub.WatchRun(pb.WatchRunRequest(run_id=run_id), metadata=metadata):
            pass
    await asyncio.wait_for(follow(), timeout)
    return (await stub.GetRun(pb.GetRunRequest(run_id=run_id), metadata=metadata)).run




async def test_a_cancel_or_retry_request_id_is_its_callers_own(cluster, auth_keys,
                                                               database_url, tmp_path):
    async with secured_orchestrator(cluster, auth_keys, database_url, tmp_path) as stub:
        carol, alice = auth_keys.bearer("carol", ["operator"]), auth_keys.bearer("alice")
        nap = WorkflowBuilder("nap").add_step("demo.sleep", {"seconds": 30},
                                              step_id="nap").build()
        run = await start_when_ready(stub, pb.StartRunRequest(definition=nap), carol)
        cancel = pb.CancelRunRequest(run_id=run.run_id, request_id="carol-cancel")
        for _ in range(2):  # the second as if the first answer was lost
            assert (await stub.CancelRun(cancel, metadata=carol)).run.status \
                == R.STATUS_CANCELLED
        bob, dave = auth_keys.bearer("bob", ["user"]), auth_keys.bearer("dave", ["user"])
        only_fail = WorkflowBuilder("fails").add_step("demo.fail", {}, step_id="f").build()
        bobs = await wait_run_as(stub, (await stub.StartRun(pb.StartRunRequest(
            definition=only_fail), metadata=bob)).run.run_id, bob)
        daves = await wait_run_as(stub, (await stub.StartRun(pb.StartRunRequest(
            definition=only_fail), metadata=dave)).run.run_id, dave)
        retry = pb.RetryRunRequest(run_id=bobs.run_id, request_id="bob-retry")
        for _ in range(2):
            assert (await stub.RetryRun(retry, metadata=bob)).run.retry_count == 1

        refusals = [  # another caller's ids: on the same run (an admin may act on it)...
            stub.CancelRun(cancel, metadata=alice),
            stub.RetryRun(retry, metadata=alice),
            # ...or on its own run.
            stub.RetryRun(pb.RetryRunRequest(run_id=daves.run_id, request_id="bob-retry"),
                          metadata=dave),
        ]
        for call in refusals:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await call
            assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert from_rpc_error(caught.value).reason == "REQUEST_ID_REUSED"
            assert "carol" not in caught.value.details() and "bob" not in caught.value.details()
        assert (await wait_run_as(stub, bobs.run_id, bob)).retry_count == 1
        assert (await stub.GetRun(pb.GetRunRequest(run_id=daves.run_id),
                                  metadata=dave)).run.retry_count == 0
        carols = (await stub.GetRun(pb.GetRunRequest(run_id=run.run_id), metadata=carol)).run
        assert (carols.status, carols.retry_count) == (R.STATUS_CANCELLED, 0)
