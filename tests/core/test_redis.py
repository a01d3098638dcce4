"""Redis helpers: URLs in messages, and whether a Redis answers."""

from __future__ import annotations

import socket

import baton_core
from baton_core import _redis


def test_redact_url_hides_only_the_password():
    assert baton_core.redact_url("redis://:s3cret@host:6380/1") == "redis://:***@host:6380/1"
    assert baton_core.redact_url("redis://user:pw@host/0") == "redis://user:***@host/0"
    assert baton_core.redact_url("redis://host:6379/0") == "redis://host:6379/0"


def test_redis_problem_says_why_a_redis_does_not_answer(redis_url):
    assert baton_core.redis_problem(redis_url) is None
    problem = baton_core.redis_problem(f"redis://127.0.0.1:{baton_core.free_port()}/0")
    assert problem and "refused" in problem.lower()


def test_free_ports_are_distinct_bindable_and_below_the_ephemeral_range():
    """Outgoing connections take their local ports from the ephemeral range, so a
    port picked there could be gone before the server binds it."""
    floor = _redis._ephemeral_floor()
    ports = [baton_core.free_port() for _ in range(50)]
    assert len(set(ports)) == 50
    assert all(_redis._LOWEST_PORT <= p < floor for p in ports)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", ports[-1]))  # free when handed out
        sock.listen()
        # A port something listens on is never handed out.
        assert baton_core.bind_problem("127.0.0.1", ports[-1]) == "Address already in use"
