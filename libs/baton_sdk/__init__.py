"""Baton's Python SDK: write workers, and call the Baton services.

Workers::

    @method("casefile.create", description="Creates a casefile.")
    async def create(params: CreateCasefile, ctx: InvocationContext) -> Created: ...

    await Worker(methods=[create], registry_addr="127.0.0.1:50051").run()

Clients: RegistryClient, OrchestratorClient, WorkflowsClient, SessionsClient and
ProviderClient,
each over one reused channel, raising baton_core's BatonError subclasses.
"""

import baton_core as _baton_core  # noqa: F401, I001 - first: it sets gRPC up before gRPC loads

from ._builder import WorkflowBuilder, load_workflow, workflow_from_dict, workflow_to_dict
from ._context import InvocationContext
from ._method import MethodDefinition, method
from ._orchestrator_client import OrchestratorClient
from ._provider import METHOD_FAILED, MethodProvider
from ._provider_client import ProviderClient
from ._registry_client import RegistryClient
from ._retry import RetryPolicy
from ._sessions_client import SessionsClient
from ._worker import Worker
from ._workflows_client import WorkflowsClient

__all__ = [
    "METHOD_FAILED",
    "InvocationContext",
    "MethodDefinition",
    "MethodProvider",
    "OrchestratorClient",
    "ProviderClient",
    "RegistryClient",
    "RetryPolicy",
    "SessionsClient",
    "Worker",
    "WorkflowBuilder",
    "WorkflowsClient",
    "load_workflow",
    "method",
    "workflow_from_dict",
    "workflow_to_dict",
]
