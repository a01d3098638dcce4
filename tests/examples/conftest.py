"""Fixtures for the example worker: its store in a temporary directory."""

from __future__ import annotations

import pytest
from sdk.conftest import provider_client, registry_addr, start_worker  # noqa: F401

from baton_examples.casefile_store import CasefileStore


@pytest.fixture
async def store(tmp_path):
    store = CasefileStore(tmp_path / "casefile_worker.db")
    await store.open()
    yield store
    await store.close()
