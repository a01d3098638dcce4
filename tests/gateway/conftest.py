"""Fixtures: HTTP clients for the gateway of the platform `running` (tests/conftest.py)."""

from __future__ import annotations

import httpx
import pytest


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
