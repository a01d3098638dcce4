"""AutoPipeline: concurrent commands share round trips, each caller gets its own reply."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from baton_core import new_id
from baton_sessions._pipeline import AutoPipeline


@pytest.fixture
async def pipeline(redis_url):
    client = aioredis.from_url(redis_url)
    yield AutoPipeline(client, timeout=2.0)
    await client.aclose()


async def test_concurrent_commands_get_their_own_replies(pipeline):
    prefix = f"test:pipeline:{new_id()}"
    await asyncio.gather(*(pipeline.execute("SET", f"{prefix}:{i}", i) for i in range(200)))
    replies = await asyncio.gather(*(pipeline.execute("GET", f"{prefix}:{i}")
                                     for i in range(200)))
    assert replies == [str(i).encode() for i in range(200)]


async def test_an_error_goes_to_its_caller_only(pipeline):
    key = f"test:pipeline:{new_id()}"
    await pipeline.execute("SET", key, "text")
    results = await asyncio.gather(pipeline.execute("GET", key),
                                   pipeline.execute("INCR", key),
                                   pipeline.execute_all(("GET", key), ("INCR", key)),
                                   pipeline.execute("GET", key), return_exceptions=True)
    assert results[0] == results[3] == b"text"
    assert isinstance(results[1], ResponseError) and isinstance(results[2], ResponseError)
