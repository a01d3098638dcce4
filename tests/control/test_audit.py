"""Audit: one record per execution and per change, on every service, naming the real actor."""

from __future__ import annotations

from google.protobuf import field_mask_pb2

from baton.orchestrator.v1 import (
    audit_pb2,
    hooks_pb2,
    orchestrator_pb2,
    policies_pb2,
    workflows_pb2_grpc,
)
from baton.orchestrator.v1 import circuit_breakers_pb2 as cb
from baton.orchestrator.v1 import workflows_pb2 as wf
from baton.registry.v1 import registry_pb2
from baton.sessions.v1 import sessions_pb2
from baton_core import dict_to_struct, from_rpc_error, struct_to_dict

from .conftest import until


async def records_of(replica, metadata, **filters) -> list[audit_pb2.AuditRecord]:
    found, token = [], ""
    while True:
        page = await replica.audit.ListAuditRecords(audit_pb2.ListAuditRecordsRequest(
            page_size=3, page_token=token, **filters), metadata=metadata)
        found += page.records
        token = page.next_page_token
        if not token:
            return found


async def test_every_mutation_and_execution_is_recorded_with_the_real_actor(
        control, probe, auth_keys, admin):
    p = probe.prefix
    actor = f"{p}-alice"
    alice = auth_keys.bearer(actor, ["admin"])
    a = control.a
    # Orchestrator: policies, hooks, breakers, workflows.
    created = (await a.policies.CreatePolicy(policies_pb2.CreatePolicyRequest(
        policy=policies_pb2.Policy(name=f"{p}-audited", pattern=f"{p}.*")),
        metadata=alice)).policy
    await a.policies.UpdatePolicy(policies_pb2.UpdatePolicyRequest(
        policy=policies_pb2.Policy(name=created.name, description="changed"),
        update_mask=field_mask_pb2.FieldMask(paths=["description"])), metadata=alice)
    await a.policies.DeletePolicy(policies_pb2.DeletePolicyRequest(name=created.name),
                                  metadata=alice)
    await a.hooks.RegisterHook(hooks_pb2.RegisterHookRequest(hook=hooks_pb2.Hook(
        name=f"{p}-hook", stage=hooks_pb2.Hook.STAGE_PRE, address="127.0.0.1:9")),
        metadata=alice)
    await a.hooks.DeleteHook(hooks_pb2.DeleteHookRequest(name=f"{p}-hook"), metadata=alice)
    await a.breakers.UpdateCircuitBreakerConfig(cb.UpdateCircuitBreakerConfigRequest(
        endpoint=f"{p}:1", config=cb.CircuitBreakerConfig(failure_threshold=3)),
        metadata=alice)
    await a.breakers.ResetCircuitBreaker(cb.ResetCircuitBreakerRequest(
        endpoint=f"{p}:1", clear_config=True), metadata=alice)
    workflows = workflows_pb2_grpc.WorkflowsStub(control.workflows_channel)
    workflow = (await workflows.CreateWorkflow(wf.CreateWorkflowRequest(workflow=wf.Workflow(
        name=f"{p}-flow", steps=[wf.WorkflowStep(step_id="s", method=probe.echo,
                                                 params=dict_to_struct({"value": "x"}))])),
        metadata=alice)).workflow
    await workflows.DeleteWorkflow(wf.DeleteWorkflowRequest(workflow_id=workflow.workflow_id),
                                   metadata=alice)
    # A run of an inline definition: the run keeps the definition, the record its summary.
    run = (await workflows.StartRun(wf.StartRunRequest(
        definition=wf.Workflow(name=f"{p}-inline", steps=[wf.WorkflowStep(
            step_id="s", method=probe.echo, params=dict_to_struct({"value": "x"}))]),
        input=dict_to_struct({"a": 1})), metadata=alice)).run
    # Registry: methods and tools.
    await control.registry.UpdateMethod(registry_pb2.UpdateMethodRequest(
        method=registry_pb2.Method(name=probe.echo, description="audited"),
        update_mask=field_mask_pb2.FieldMask(paths=["description"])), metadata=alice)
    await control.registry.RegisterTool(registry_pb2.RegisterToolRequest(
        tool=registry_pb2.Tool(name=f"{p}_tool", method=probe.echo)), metadata=alice)
    await control.registry.RegisterMethod(registry_pb2.RegisterMethodRequest(
        method=registry_pb2.Method(name=f"{p}.spare", version="1.0.0")), metadata=alice)
    await control.registry.DeleteMethod(registry_pb2.DeleteMethodRequest(name=f"{p}.spare"),
                                        metadata=alice)
    # Sessions, and an execution in one (tracked by the orchestrator for alice).
    session = (await control.sessions.CreateSession(sessions_pb2.CreateSessionRequest(
        user_id=actor), metadata=alice)).session
    await control.sessions.UpdateSessionContext(sessions_pb2.UpdateSessionContextRequest(
        session_id=session.session_id, values=dict_to_struct({"k": "v"})), metadata=alice)
    executed = await control.b.dispatch.Dispatch(orchestrator_pb2.DispatchRequest(
        operation=probe.echo, params=dict_to_struct({"value": "x"}),
        session_id=session.session_id), metadata=alice)
    await control.sessions.CloseSession(sessions_pb2.CloseSessionRequest(
        session_id=session.session_id), metadata=alice)

    expected = {
        ("create", "policy", created.name), ("update", "policy", created.name),
        ("delete", "policy", created.name), ("register", "hook", f"{p}-hook"),
        ("delete", "hook", f"{p}-hook"), ("update", "circuit_breaker", f"{p}:1"),
        ("reset", "circuit_breaker", f"{p}:1"),
        ("create", "workflow", workflow.workflow_id),
        ("delete", "workflow", workflow.workflow_id), ("start", "run", run.run_id),
        ("update", "method", probe.echo), ("register", "tool", f"{p}_tool"),
        ("register", "method", f"{p}.spare"), ("delete", "method", f"{p}.spare"),
        ("create", "session", session.session_id), ("update", "session", session.session_id),
        ("track", "session", session.session_id), ("close", "session", session.session_id),
        ("dispatch", "operation", probe.echo),
    }
    found: dict = {}
    executions: set[str] = set()

    async def all_recorded() -> bool:
        found.clear()
        for record in await records_of(control.b, admin, actor=actor):
            found[(record.action, record.entity_type, record.entity)] = record
            if record.action == "dispatch":
                executions.add(struct_to_dict(record.changes)["execution_id"])
        return expected <= set(found) and len(executions) == 2

    await until(all_recorded, what="every change is in the audit log")
    assert all(r.outcome == "OK" and r.actor == actor and r.time.seconds
               for r in found.values())
    services = {key[1]: found[key].service for key in expected}
    assert services["method"] == "registry" and services["session"] == "sessions"
    assert services["policy"] == "orchestrator"
    # The orchestrator tracked the execution in alice's name, as itself.
    tracked = found[("track", "session", session.session_id)]
    assert tracked.via == "service:orchestrator" and tracked.roles == ["admin"]
    # Two executions of the method: the Dispatch and the run's step.
    assert executed.metadata.execution_id in executions
    assert struct_to_dict(found[("update", "policy", created.name)].changes)[
        "update_mask"] == "description"
    assert struct_to_dict(found[("start", "run", run.run_id)].changes) == {
        "definition": {"summarized": True, "name": f"{p}-inline", "steps": 1},
        "input": {"a": 1}}
    assert len(struct_to_dict(found[("create", "workflow", workflow.workflow_id)].changes)[
        "workflow"]["steps"]) == 1


async def test_refused_changes_are_recorded_with_their_outcome(control, probe, auth_keys):
    actor = f"{probe.prefix}-mallory"
    mallory = auth_keys.bearer(actor, ["admin"])
    try:
        await control.a.policies.DeletePolicy(policies_pb2.DeletePolicyRequest(
            name=f"{probe.prefix}-absent"), metadata=mallory)
    except Exception:  # noqa: BLE001 - NOT_FOUND is the point
        pass

    async def recorded() -> bool:
        records = await records_of(control.a, mallory, actor=actor, action="delete")
        return [r.outcome for r in records] == ["NOT_FOUND"]

    await until(recorded, what="the refused delete is recorded")


async def test_an_execution_the_caller_gave_up_on_is_recorded(control, probe, auth_keys):
    actor = f"{probe.prefix}-impatient"
    caller = auth_keys.bearer(actor, ["admin"])
    call = control.a.dispatch.Dispatch(orchestrator_pb2.DispatchRequest(
        operation=probe.sleep, params=dict_to_struct({"seconds": 3})),
        metadata=caller, timeout=10)
    await until(lambda: _calls(probe, "sleep", 1), what="the worker is sleeping")
    call.cancel()  # the caller goes away (Ctrl-C, a closed HTTP connection)

    async def recorded() -> bool:
        records = await records_of(control.a, caller, actor=actor, action="dispatch")
        return [(r.entity, r.outcome) for r in records] == [(probe.sleep, "CANCELLED")]

    await until(recorded, what="the abandoned execution is recorded")


async def _calls(probe, name: str, count: int) -> bool:
    return probe.calls[name] >= count


async def test_a_made_up_page_token_is_invalid_argument(control, auth_keys):
    import base64

    import grpc
    import pytest

    admin = auth_keys.bearer("auditor", ["admin"])
    for made_up in ("a" + "9" * 30, "b12", "a-5"):
        token = base64.urlsafe_b64encode(made_up.encode()).decode()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await control.a.audit.ListAuditRecords(audit_pb2.ListAuditRecordsRequest(
                page_token=token), metadata=admin)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, made_up


async def test_a_record_id_too_long_to_store_is_refused_and_nothing_is_written(
        control, probe, auth_keys):
    import grpc
    import pytest

    service = auth_keys.bearer("service:registry", ["service"])
    actor = f"{probe.prefix}-writer"
    records = [audit_pb2.AuditRecord(record_id=f"{probe.prefix}-ok", actor=actor,
                                     action="create", entity_type="method", service="registry"),
               audit_pb2.AuditRecord(record_id="r" * 65, actor=actor, action="create",
                                     entity_type="method", service="registry")]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await control.a.audit.WriteAuditRecords(audit_pb2.WriteAuditRecordsRequest(
            records=records), metadata=service)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    error = from_rpc_error(caught.value)
    assert error.violations == [("records[1].record_id", "must be at most 64 characters")]
    assert await records_of(control.a, auth_keys.bearer("auditor", ["admin"]),
                            actor=actor) == []


async def test_a_page_token_holds_only_for_the_filters_it_was_made_with(
        control, probe, auth_keys):
    import grpc
    import pytest

    admin = auth_keys.bearer("auditor", ["admin"])
    for _ in range(3):
        await control.a.dispatch.Dispatch(orchestrator_pb2.DispatchRequest(
            operation=probe.echo, params=dict_to_struct({"value": "v"})), metadata=admin)
    first = await control.a.audit.ListAuditRecords(audit_pb2.ListAuditRecordsRequest(
        actor="auditor", page_size=1), metadata=admin)
    assert first.next_page_token
    # The same filters go on; other filters with that token are refused.
    more = await control.a.audit.ListAuditRecords(audit_pb2.ListAuditRecordsRequest(
        actor="auditor", page_size=1, page_token=first.next_page_token), metadata=admin)
    assert more.records and more.records[0].record_id != first.records[0].record_id
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await control.a.audit.ListAuditRecords(audit_pb2.ListAuditRecordsRequest(
            actor="someone-else", page_size=1, page_token=first.next_page_token),
            metadata=admin)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # A page_size over the maximum is the maximum (AIP-158), not an error.
    big = await control.a.audit.ListAuditRecords(audit_pb2.ListAuditRecordsRequest(
        actor="auditor", page_size=5000), metadata=admin)
    assert len(big.records) >= 3


async def test_a_forged_page_token_past_a_64_bit_position_is_invalid_argument(
        control, auth_keys):
    import grpc
    import pytest

    from baton_core import encode_page_token
    from baton_orchestrator._audit_log import AuditQuery, _scope

    admin = auth_keys.bearer("auditor", ["admin"])
    for position in (10**30, -1, 2**63):
        token = encode_page_token({"id": position}, _scope(AuditQuery()))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await control.a.audit.ListAuditRecords(audit_pb2.ListAuditRecordsRequest(
                page_token=token), metadata=admin)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, position
    fine = encode_page_token({"id": 2**63 - 1}, _scope(AuditQuery()))
    await control.a.audit.ListAuditRecords(audit_pb2.ListAuditRecordsRequest(
        page_token=fine), metadata=admin)
