"""Orchestrator and sessions clients against stand-in servicers on real ports.

The stand-ins echo what they receive, so these tests pin how each client
method fills its request, sends metadata and converts errors.
"""

from __future__ import annotations

import asyncio

import pytest

from baton.orchestrator.v1 import (
    hooks_pb2,
    hooks_pb2_grpc,
    orchestrator_pb2,
    orchestrator_pb2_grpc,
    policies_pb2,
    policies_pb2_grpc,
)
from baton.sessions.v1 import sessions_pb2, sessions_pb2_grpc
from baton_core import (
    Aborted,
    GrpcServer,
    NotFound,
    Service,
    Unavailable,
    constants,
    dict_to_struct,
    duration_to_seconds,
    free_port,
    struct_to_dict,
)
from baton_sdk import OrchestratorClient, SessionsClient

pytestmark = pytest.mark.timeout(10)


class FakeOrchestrator(orchestrator_pb2_grpc.OrchestratorServicer):
    async def Dispatch(self, request, context):  # noqa: N802
        if request.operation == "nope.op":
            raise NotFound("unknown operation nope.op", reason="METHOD_NOT_FOUND")
        d = request.directives
        return orchestrator_pb2.DispatchResponse(result=dict_to_struct({
            "operation": request.operation, "params": struct_to_dict(request.params),
            "session_id": request.session_id, "skip_hooks": list(d.skip_hooks),
            "timeout": duration_to_seconds(d.timeout), "timeout_set": d.HasField("timeout"),
            "dry_run": d.dry_run,
            "idempotency_key": d.idempotency_key,
            "deadline_set": context.time_remaining() is not None,
            "metadata": {k: v for k, v in context.invocation_metadata()
                         if k in ("authorization", "x-tenant")},
        }))


HOOKS = [hooks_pb2.Hook(name="metrics", stage=hooks_pb2.Hook.STAGE_PRE, builtin=True),
         hooks_pb2.Hook(name="audit", stage=hooks_pb2.Hook.STAGE_POST, builtin=True)]
POLICIES = [policies_pb2.Policy(name="default", pattern="*", hooks=["metrics"])]


class FakeHooks(hooks_pb2_grpc.HookManagerServicer):
    async def ListHooks(self, request, context):  # noqa: N802
        return hooks_pb2.ListHooksResponse(
            hooks=[h for h in HOOKS if request.stage in (0, h.stage)])

    async def GetHook(self, request, context):  # noqa: N802
        for hook in HOOKS:
            if hook.name == request.name:
                return hooks_pb2.GetHookResponse(hook=hook)
        raise NotFound(f"no hook {request.name}")


class FakePolicies(policies_pb2_grpc.PolicyEngineServicer):
    async def ListPolicies(self, request, context):  # noqa: N802
        return policies_pb2.ListPoliciesResponse(policies=POLICIES)

    async def GetPolicy(self, request, context):  # noqa: N802
        if request.name != "default":
            raise NotFound(f"no policy {request.name}")
        return policies_pb2.GetPolicyResponse(policy=POLICIES[0])


class FakeSessions(sessions_pb2_grpc.SessionOrchestratorServicer):
    def __init__(self) -> None:
        self.watch_cancelled = asyncio.Event()

    async def FindOrCreateSession(self, request, context):  # noqa: N802
        return sessions_pb2.FindOrCreateSessionResponse(session=sessions_pb2.Session(
            session_id="s1", user_id=request.user_id, casefile_id=request.casefile_id,
            status=sessions_pb2.Session.STATUS_ACTIVE), created=True)

    async def UpdateSessionContext(self, request, context):  # noqa: N802
        if request.etag == "stale":
            raise Aborted("etag is stale")
        values = struct_to_dict(request.values)
        values["_mask"] = list(request.update_mask.paths)
        return sessions_pb2.UpdateSessionContextResponse(
            context=sessions_pb2.SessionContext(values=dict_to_struct(values), etag="e2"))

    async def WatchSession(self, request, context):  # noqa: N802
        if request.session_id != "s1":
            raise NotFound(f"no session {request.session_id}")
        for seq in range(request.after_sequence + 1, 4):
            yield sessions_pb2.WatchSessionResponse(event=sessions_pb2.SessionEvent(
                sequence=seq, session_id="s1", type=sessions_pb2.SessionEvent.TYPE_CREATED))
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.watch_cancelled.set()
            raise


@pytest.fixture
async def servers():
    sessions = FakeSessions()
    server = GrpcServer("127.0.0.1:0", [
        Service(constants.ORCHESTRATOR_SERVICE, FakeOrchestrator(),
                orchestrator_pb2_grpc.add_OrchestratorServicer_to_server),
        Service(constants.HOOK_MANAGER_SERVICE, FakeHooks(),
                hooks_pb2_grpc.add_HookManagerServicer_to_server),
        Service(constants.POLICY_ENGINE_SERVICE, FakePolicies(),
                policies_pb2_grpc.add_PolicyEngineServicer_to_server),
        Service(constants.SESSIONS_SERVICE, sessions,
                sessions_pb2_grpc.add_SessionOrchestratorServicer_to_server),
    ])
    port = await server.start()
    yield f"127.0.0.1:{port}", sessions
    await server.stop(0)


async def test_dispatch_sends_params_directives_token_and_a_deadline(servers):
    address, _ = servers
    async with OrchestratorClient(address, token="t0k", metadata=[("x-tenant", "acme")]) as orch:
        reply = await orch.dispatch("casefile.create", {"title": "x", "n": 2}, session_id="s1",
                                    timeout=5.0, dry_run=True, idempotency_key="k1",
                                    skip_hooks=["audit"])
    assert isinstance(reply, orchestrator_pb2.DispatchResponse)
    assert struct_to_dict(reply.result) == {
        "operation": "casefile.create", "params": {"title": "x", "n": 2}, "session_id": "s1",
        "skip_hooks": ["audit"], "timeout": 5, "timeout_set": True, "dry_run": True,
        "idempotency_key": "k1", "deadline_set": True,
        "metadata": {"authorization": "Bearer t0k", "x-tenant": "acme"}}


@pytest.mark.parametrize("timeout", [None, 0, 0.0])
async def test_dispatch_without_a_timeout_leaves_the_default_to_the_orchestrator(
        servers, timeout):
    # A zero timeout is none to the orchestrator (its default applies, which may be
    # minutes); the client cut such calls short after a second of its own deadline.
    address, _ = servers
    async with OrchestratorClient(address) as orch:
        reply = await orch.dispatch("casefile.create", timeout=timeout)
    result = struct_to_dict(reply.result)
    assert (result["timeout_set"], result["deadline_set"]) == (False, False)


@pytest.mark.parametrize("timeout", [-1, -0.001, float("nan"), float("inf")])
async def test_dispatch_refuses_a_timeout_that_is_no_duration_before_sending(timeout):
    # Nothing listens there: a request sent would fail as UNAVAILABLE instead.
    async with OrchestratorClient(f"127.0.0.1:{free_port()}") as orch:
        with pytest.raises(ValueError, match="timeout must be a number of seconds"):
            await orch.dispatch("casefile.create", timeout=timeout)


async def test_dispatch_errors_arrive_as_baton_errors(servers):
    address, _ = servers
    async with OrchestratorClient(address) as orch:
        with pytest.raises(NotFound) as caught:
            await orch.dispatch("nope.op")
    assert caught.value.reason == "METHOD_NOT_FOUND"


async def test_hooks_and_policies_are_listed_and_fetched(servers):
    address, _ = servers
    async with OrchestratorClient(address) as orch:
        assert [h.name for h in await orch.list_hooks()] == ["metrics", "audit"]
        post = await orch.list_hooks(stage=hooks_pb2.Hook.STAGE_POST)
        assert [h.name for h in post] == ["audit"]
        assert (await orch.get_hook("audit")).stage == hooks_pb2.Hook.STAGE_POST
        with pytest.raises(NotFound):
            await orch.get_hook("nope")
        assert [p.name for p in await orch.list_policies()] == ["default"]
        assert (await orch.get_policy("default")).pattern == "*"
        with pytest.raises(NotFound):
            await orch.get_policy("nope")


async def test_find_or_create_returns_the_session(servers):
    address, _ = servers
    async with SessionsClient(address) as sessions:
        session = await sessions.find_or_create("alice", "cf1")
    assert isinstance(session, sessions_pb2.Session)
    assert (session.session_id, session.user_id, session.casefile_id) == ("s1", "alice", "cf1")


async def test_update_session_context_sends_values_mask_and_etag(servers):
    address, _ = servers
    async with SessionsClient(address) as sessions:
        context = await sessions.update_session_context("s1", {"a": 1}, update_mask=["a", "b"])
        assert struct_to_dict(context.values) == {"a": 1, "_mask": ["a", "b"]}
        assert context.etag == "e2"
        with pytest.raises(Aborted):
            await sessions.update_session_context("s1", {"a": 1}, etag="stale")


async def test_watch_session_yields_events_and_cancels_the_stream_on_exit(servers):
    address, fake = servers
    async with SessionsClient(address) as sessions:
        seen = []
        async for event in sessions.watch_session("s1", after_sequence=1):
            seen.append(event.sequence)
            if len(seen) == 2:
                break
        assert seen == [2, 3]
        await asyncio.wait_for(fake.watch_cancelled.wait(), 5)
        with pytest.raises(NotFound):
            async for _ in sessions.watch_session("nope"):
                pass


async def test_unreachable_service_is_unavailable():
    async with SessionsClient(f"127.0.0.1:{free_port()}", timeout=2) as sessions:
        with pytest.raises(Unavailable):
            await sessions.get_session("s1")


async def test_close_is_safe_twice(servers):
    address, _ = servers
    client = OrchestratorClient(address)
    await client.close()
    await client.close()
