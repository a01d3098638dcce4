"""Durable workflows: definitions, runs, DAG execution, leases across replicas."""

from ._definition import StepDef, WorkflowDef
from ._engine import EngineConfig, WorkflowEngine
from ._service import WorkflowsServicer

__all__ = ["EngineConfig", "StepDef", "WorkflowDef", "WorkflowEngine", "WorkflowsServicer"]
