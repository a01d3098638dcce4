"""The method registry: methods, tools, and the workers that serve them under leases."""

from ._app import RegistryApp, build_app

__all__ = ["RegistryApp", "build_app"]
