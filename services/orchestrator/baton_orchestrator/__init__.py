"""The orchestrator service: Dispatch, hooks and policies (and later workflows)."""

from ._app import OrchestratorApp, build_app
from ._dispatch import DispatchCall, Dispatcher, DispatchResult

__all__ = ["DispatchCall", "DispatchResult", "Dispatcher", "OrchestratorApp", "build_app"]
