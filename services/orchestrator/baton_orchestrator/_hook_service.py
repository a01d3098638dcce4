"""The HookManager servicer: built-in and external hooks, in run order."""

from __future__ import annotations

from baton.orchestrator.v1 import hooks_pb2, hooks_pb2_grpc
from baton_core import FailedPrecondition, InvalidArgument, NotFound, check_enum, required

from ._control import ControlPlane
from ._external_hooks import HookSpec, hook_to_proto, validate_hook


class HookManagerServicer(hooks_pb2_grpc.HookManagerServicer):
    def __init__(self, control: ControlPlane) -> None:
        self._control = control

    async def ListHooks(self, request, context):
        hooks = [hook_to_proto(h) for h in self._control.hooks.all()]
        if check_enum(hooks_pb2.Hook.Stage, request.stage, "stage"):
            hooks = [h for h in hooks if h.stage == request.stage]
        return hooks_pb2.ListHooksResponse(hooks=hooks)

    async def GetHook(self, request, context):
        hook = self._control.hooks.get(required(request.name, "name"))
        if hook is None:
            raise NotFound(f"no hook named {request.name!r}", reason="HOOK_NOT_FOUND",
                           metadata={"hook": request.name})
        return hooks_pb2.GetHookResponse(hook=hook_to_proto(hook))

    async def RegisterHook(self, request, context):
        if not request.HasField("hook"):
            raise InvalidArgument("hook is required", violations=[("hook", "is required")])
        validate_hook(request.hook, self._control.builtin_names)
        spec = HookSpec.from_proto(request.hook)
        created = await self._control.store.put_hook(spec.name, spec.to_json())
        await self._control.changed()
        return hooks_pb2.RegisterHookResponse(
            hook=hook_to_proto(self._control.hooks.get(spec.name)), created=created)

    async def DeleteHook(self, request, context):
        if required(request.name, "name") in self._control.builtin_names:
            raise FailedPrecondition(f"{request.name!r} is a built-in hook",
                                     reason="HOOK_BUILTIN", metadata={"hook": request.name})
        if not await self._control.store.delete_hook(request.name):
            raise NotFound(f"no hook named {request.name!r}", reason="HOOK_NOT_FOUND",
                           metadata={"hook": request.name})
        await self._control.changed()
        return hooks_pb2.DeleteHookResponse()
