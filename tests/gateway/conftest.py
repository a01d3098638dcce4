"""Fixtures: the platform (auth on) behind a real Envoy, and HTTP clients for it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from ._platform import RunningPlatform, platform_running


@pytest.fixture(scope="session")
async def running(databases, redis_url, tmp_path_factory,
                  auth_keys) -> AsyncIterator[RunningPlatform]:
    data_dir = tmp_path_factory.mktemp(f"gateway-{databases.backend}")
    async with platform_running(databases, redis_url, data_dir, auth_keys) as running:
        yield running


@pytest.fixture
async def http(running):
    """An HTTP/1.1 client for the gateway, as curl or a browser would be, that
    sends an admin's `authorization: Bearer` token with every request."""
    async with httpx.AsyncClient(base_url=running.http, timeout=30,
                                 headers=running.headers()) as client:
        yield client


@pytest.fixture
async def anonymous(running):
    """An HTTP client for the gateway that sends no credentials."""
    async with httpx.AsyncClient(base_url=running.http, timeout=30) as client:
        yield client
