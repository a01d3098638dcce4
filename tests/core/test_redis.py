"""Redis helpers: URLs in messages, and whether a Redis answers."""

from __future__ import annotations

import baton_core


def test_redact_url_hides_only_the_password():
    assert baton_core.redact_url("redis://:s3cret@host:6380/1") == "redis://:***@host:6380/1"
    assert baton_core.redact_url("redis://user:pw@host/0") == "redis://user:***@host/0"
    assert baton_core.redact_url("redis://host:6379/0") == "redis://host:6379/0"


def test_redis_problem_says_why_a_redis_does_not_answer(redis_url):
    assert baton_core.redis_problem(redis_url) is None
    problem = baton_core.redis_problem(f"redis://127.0.0.1:{baton_core.free_port()}/0")
    assert problem and "refused" in problem.lower()
