"""Policies: precedence, CRUD, the policies file, ExplainPolicy, roles and timeouts."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import grpc
import pytest
from google.protobuf import duration_pb2, field_mask_pb2

from baton.orchestrator.v1 import hooks_pb2, orchestrator_pb2, policies_pb2
from baton.registry.v1 import registry_pb2
from baton_core import dict_to_struct, from_rpc_error

from .conftest import put_policy


def seconds(value: float) -> duration_pb2.Duration:
    duration = duration_pb2.Duration()
    duration.FromNanoseconds(int(value * 1e9))
    return duration


async def dispatch(replica, operation, metadata, params=None, **directives):
    return await replica.dispatch.Dispatch(orchestrator_pb2.DispatchRequest(
        operation=operation, params=dict_to_struct(params or {"value": "v"}),
        directives=orchestrator_pb2.Directives(**directives)), metadata=metadata)


async def test_the_most_specific_policy_wins(control, probe, admin):
    p = probe.prefix
    await put_policy(control, admin, name=f"{p}-family", pattern=f"{p}.*")
    await put_policy(control, admin, name=f"{p}-exact", pattern=probe.echo)

    assert (await dispatch(control.a, probe.echo, admin)).metadata.policy == f"{p}-exact"
    slept = await dispatch(control.b, probe.sleep, admin, {"seconds": 0})
    assert slept.metadata.policy == f"{p}-family"

    explained = await control.b.policies.ExplainPolicy(
        policies_pb2.ExplainPolicyRequest(operation=probe.echo), metadata=admin)
    assert explained.policy.name == f"{p}-exact"
    assert list(explained.matching_policies) == [f"{p}-exact", f"{p}-family", "default"]
    listed = [x.name for x in (await control.a.policies.ListPolicies(
        policies_pb2.ListPoliciesRequest(), metadata=admin)).policies]
    assert listed.index(f"{p}-exact") < listed.index(f"{p}-family") < listed.index("default")

    await control.a.policies.DeletePolicy(
        policies_pb2.DeletePolicyRequest(name=f"{p}-exact"), metadata=admin)
    assert (await dispatch(control.a, probe.echo, admin)).metadata.policy == f"{p}-family"


async def test_policy_crud_with_masks_etags_and_conflicts(control, probe, admin):
    p = probe.prefix
    created = await put_policy(control, admin, name=f"{p}-crud", pattern=probe.echo,
                               description="first", max_timeout=seconds(10))
    assert created.source == "api" and created.etag and created.create_time.seconds
    # The answer is the policy as it is served, defaults included.
    assert created == (await control.a.policies.GetPolicy(policies_pb2.GetPolicyRequest(
        name=f"{p}-crud"), metadata=admin)).policy
    assert list(created.hooks) == ["metrics", "audit", "session_lifecycle"]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await control.a.policies.CreatePolicy(policies_pb2.CreatePolicyRequest(
            policy=policies_pb2.Policy(name=f"{p}-other", pattern=probe.echo)), metadata=admin)
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS

    updated = (await control.a.policies.UpdatePolicy(policies_pb2.UpdatePolicyRequest(
        policy=policies_pb2.Policy(name=f"{p}-crud", description="second",
                                   etag=created.etag),
        update_mask=field_mask_pb2.FieldMask(paths=["description"])), metadata=admin)).policy
    assert updated.description == "second" and updated.etag != created.etag
    assert updated.max_timeout.seconds == 10  # not in the mask: kept

    with pytest.raises(grpc.aio.AioRpcError) as caught:  # stale etag
        await control.a.policies.UpdatePolicy(policies_pb2.UpdatePolicyRequest(
            policy=policies_pb2.Policy(name=f"{p}-crud", description="third",
                                       etag=created.etag),
            update_mask=field_mask_pb2.FieldMask(paths=["description"])), metadata=admin)
    assert caught.value.code() == grpc.StatusCode.ABORTED

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await control.a.policies.CreatePolicy(policies_pb2.CreatePolicyRequest(
            policy=policies_pb2.Policy(name="Bad!", pattern="not a pattern", hooks=["nope"],
                                       default_timeout=seconds(9),
                                       max_timeout=seconds(5))), metadata=admin)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert {f for f, _ in from_rpc_error(caught.value).violations} == {
        "policy.name", "policy.pattern", "policy.hooks[0]", "policy.default_timeout"}

    # Too long to keep: the pattern's column, a description past a method's limit.
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await control.a.policies.CreatePolicy(policies_pb2.CreatePolicyRequest(
            policy=policies_pb2.Policy(name=f"{p}-long", pattern="a" * 300 + ".*",
                                       description="d" * 20_000)), metadata=admin)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in from_rpc_error(caught.value).violations] == [
        "policy.pattern", "policy.description"]

    # What Dispatch would otherwise quietly replace or never match is refused too.
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await control.a.policies.CreatePolicy(policies_pb2.CreatePolicyRequest(
            policy=policies_pb2.Policy(
                name=f"{p}-lax", pattern="Demo.Echo", required_roles=["opertor"],
                hooks=["metrics"], skippable_hooks=["audit"],
                retry_policy=registry_pb2.RetryPolicy(
                    max_attempts=-1, multiplier=-2, retryable_codes=["BOGUS"],
                    initial_delay=seconds(5), max_delay=seconds(1)))), metadata=admin)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert {f for f, _ in from_rpc_error(caught.value).violations} == {
        "policy.pattern", "policy.required_roles[0]", "policy.skippable_hooks[0]",
        "policy.retry_policy.max_attempts", "policy.retry_policy.multiplier",
        "policy.retry_policy.retryable_codes[0]", "policy.retry_policy.max_delay"}
    with pytest.raises(grpc.aio.AioRpcError) as caught:  # and nothing was written
        await control.a.policies.GetPolicy(policies_pb2.GetPolicyRequest(name=f"{p}-lax"),
                                           metadata=admin)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    # Numbers that are not numbers: once stored, a NaN rate stopped every later start.
    for value in (float("nan"), float("inf")):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await control.a.policies.CreatePolicy(policies_pb2.CreatePolicyRequest(
                policy=policies_pb2.Policy(
                    name=f"{p}-nan", pattern="demo.echo",
                    actor_rate_limit=policies_pb2.RateLimit(requests_per_second=value),
                    retry_policy=registry_pb2.RetryPolicy(multiplier=value))), metadata=admin)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert {f for f, _ in from_rpc_error(caught.value).violations} == {
            "policy.actor_rate_limit", "policy.retry_policy.multiplier"}
    listed = await control.a.policies.ListPolicies(policies_pb2.ListPoliciesRequest(),
                                                   metadata=admin)
    assert f"{p}-nan" not in [x.name for x in listed.policies]

    await control.a.policies.DeletePolicy(policies_pb2.DeletePolicyRequest(
        name=f"{p}-crud", etag=updated.etag), metadata=admin)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await control.a.policies.GetPolicy(policies_pb2.GetPolicyRequest(name=f"{p}-crud"),
                                           metadata=admin)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_policies_file_is_loaded_at_start(control, admin):
    policy = (await control.b.policies.GetPolicy(policies_pb2.GetPolicyRequest(
        name="from-file"), metadata=admin)).policy
    assert policy.source == "file" and policy.pattern == "filetest.*"
    assert policy.max_timeout.seconds == 7


async def test_required_roles_are_enforced_and_explained(control, probe, admin, auth_keys):
    p = probe.prefix
    await put_policy(control, admin, name=f"{p}-roles", pattern=probe.echo,
                     required_roles=["operator"])
    user = auth_keys.bearer("bob", ["user"])
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await dispatch(control.a, probe.echo, user)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert from_rpc_error(caught.value).reason == "POLICY_ROLE_REQUIRED"
    assert probe.calls["echo"] == 0
    await dispatch(control.b, probe.echo, auth_keys.bearer("carol", ["operator"]))
    assert probe.calls["echo"] == 1

    explained = await control.a.policies.ExplainPolicy(
        policies_pb2.ExplainPolicyRequest(operation=probe.echo), metadata=user)
    assert explained.actor == "bob" and not explained.allowed and explained.denied_reason
    for_carol = await control.a.policies.ExplainPolicy(policies_pb2.ExplainPolicyRequest(
        operation=probe.echo, actor="carol", roles=["operator"]), metadata=admin)
    assert for_carol.allowed and [h.name for h in for_carol.post_hooks] == [
        "metrics", "audit", "session_lifecycle"]
    assert probe.calls["echo"] == 1  # explaining executed nothing


async def test_timeout_directive_never_exceeds_the_policy_maximum(control, probe, admin):
    p = probe.prefix
    await put_policy(control, admin, name=f"{p}-short", pattern=probe.sleep,
                     max_timeout=seconds(0.3))
    explained = await control.a.policies.ExplainPolicy(
        policies_pb2.ExplainPolicyRequest(operation=probe.sleep), metadata=admin)
    assert explained.max_timeout.ToNanoseconds() == 300_000_000
    started = time.monotonic()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await dispatch(control.a, probe.sleep, admin, {"seconds": 3}, timeout=seconds(10))
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize(("content", "problem"), [
    ("policies: [\n", "not valid YAML: expected the node content, but found '<stream end>' "
     "at line 2, column 1"),
    ("policies: {name: x}\n", "policies: must be a list"),
    ("policies:\n  - {name: fine, pattern: 'demo.*'}\n  - 5\n",
     "policies[1]: must be a mapping (name, pattern, ...)"),
    ("policies:\n  - {name: Bad Name, pattern: 'demo.*'}\n",
     "policies[0]: invalid policy: policy.name: must be 1-63 lowercase letters"),
    ("policies:\n  - {name: x, pattern: 'demo.*', colour: red}\n",
     "policies[0]: not a policy: Message type \"baton.orchestrator.v1.Policy\" has no field "
     "named \"colour\""),
])
def test_an_orchestrator_given_a_policies_file_it_cannot_apply_says_why_and_does_not_start(
        tmp_path, content, problem):
    policies = tmp_path / "policies.yaml"
    policies.write_text(content)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BATON_", "REDIS_URL"))}
    env.update({"BATON_AUTH": "off", "BATON_DATA_DIR": str(tmp_path),
                "BATON_LISTEN": "127.0.0.1:0", "BATON_POLICIES_FILE": str(policies),
                "BATON_LOG_LEVEL": "WARNING"})
    done = subprocess.run([sys.executable, "-m", "baton_cli", "serve", "orchestrator"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert f"baton serve orchestrator: BATON_POLICIES_FILE={policies}: {problem}" in done.stderr
    assert "Traceback" not in done.stderr


async def test_a_call_naming_no_policy_or_hook_is_invalid_argument(control, admin):
    a = control.a
    for call in (a.policies.GetPolicy(policies_pb2.GetPolicyRequest(), metadata=admin),
                 a.policies.DeletePolicy(policies_pb2.DeletePolicyRequest(), metadata=admin),
                 a.hooks.GetHook(hooks_pb2.GetHookRequest(), metadata=admin),
                 a.hooks.DeleteHook(hooks_pb2.DeleteHookRequest(), metadata=admin)):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert from_rpc_error(caught.value).violations == [("name", "is required")]


async def test_a_deleted_hook_does_not_block_changing_the_rest_of_a_policy(
        control, probe, hook_servers, admin):
    p = probe.prefix
    await hook_servers(f"{p}-gone", "pre")
    created = await put_policy(control, admin, name=f"{p}-keeps", pattern=f"{p}.*",
                               hooks=["metrics", f"{p}-gone"])
    await control.a.hooks.DeleteHook(hooks_pb2.DeleteHookRequest(name=f"{p}-gone"),
                                     metadata=admin)
    updated = (await control.a.policies.UpdatePolicy(policies_pb2.UpdatePolicyRequest(
        policy=policies_pb2.Policy(name=created.name, description="touched"),
        update_mask=field_mask_pb2.FieldMask(paths=["description"])), metadata=admin)).policy
    assert updated.description == "touched" and list(updated.hooks) == ["metrics", f"{p}-gone"]
    with pytest.raises(grpc.aio.AioRpcError) as caught:  # naming it anew is refused
        await control.a.policies.UpdatePolicy(policies_pb2.UpdatePolicyRequest(
            policy=policies_pb2.Policy(name=created.name, hooks=["audit", f"{p}-gone"]),
            update_mask=field_mask_pb2.FieldMask(paths=["hooks"])), metadata=admin)
    assert from_rpc_error(caught.value).violations == [
        ("policy.hooks[1]", f"no hook named '{p}-gone' is registered")]


async def test_an_update_without_a_mask_changes_only_the_fields_it_sets(control, probe, admin):
    p = probe.prefix
    created = await put_policy(control, admin, name=f"{p}-implied", pattern=f"{p}.implied.*",
                               description="first", hooks=["metrics", "audit"])
    updated = (await control.a.policies.UpdatePolicy(policies_pb2.UpdatePolicyRequest(
        policy=policies_pb2.Policy(name=created.name, description="second")),
        metadata=admin)).policy
    assert updated.description == "second"
    # Left alone, as AIP-134 has it for an update without a mask.
    assert updated.pattern == created.pattern and list(updated.hooks) == ["metrics", "audit"]

    replaced = (await control.a.policies.UpdatePolicy(policies_pb2.UpdatePolicyRequest(
        policy=policies_pb2.Policy(name=created.name, pattern=created.pattern),
        update_mask=field_mask_pb2.FieldMask(paths=["*"])), metadata=admin)).policy
    assert replaced.description == ""  # "*": the whole policy, as the request has it

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await control.a.policies.UpdatePolicy(policies_pb2.UpdatePolicyRequest(
            policy=policies_pb2.Policy(name=created.name)), metadata=admin)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in from_rpc_error(caught.value).violations] == ["update_mask"]
