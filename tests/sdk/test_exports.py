"""The public surface of baton_sdk is pinned: changing it is a deliberate act."""

import baton_sdk


def test_public_names_are_pinned():
    assert sorted(baton_sdk.__all__) == [
        "InvocationContext",
        "METHOD_FAILED",
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


def test_every_public_name_exists_and_modules_stay_private():
    for name in baton_sdk.__all__:
        assert getattr(baton_sdk, name) is not None
    public_modules = [name for name in vars(baton_sdk)
                      if not name.startswith("_") and name not in baton_sdk.__all__
                      and type(getattr(baton_sdk, name)).__name__ == "module"]
    assert public_modules == []
