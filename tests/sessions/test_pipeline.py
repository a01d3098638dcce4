"""AutoPipeline: concurrent commands share round trips, each caller gets its own reply."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError, NoScriptError, ResponseError

from baton_core import new_id, redis_server_binary
from baton_sessions._pipeline import AutoPipeline

from .conftest import eventually

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
async def pipeline(redis_url):
    client = aioredis.from_url(redis_url)
    pipeline = AutoPipeline(client, timeout=2.0)
    yield pipeline
    await pipeline.close()
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


# Against a Redis of the test's own, which it pauses, stops and restarts.

TIMEOUT = 0.3  # seconds; short so that a hung Redis costs the test little


@pytest.fixture
async def pipeline_for():
    """Factory: an AutoPipeline on a URL (timeout TIMEOUT), closed at teardown."""
    made: list[tuple[AutoPipeline, aioredis.Redis]] = []

    def make(url: str) -> AutoPipeline:
        client = aioredis.from_url(url)
        pipeline = AutoPipeline(client, timeout=TIMEOUT)
        made.append((pipeline, client))
        return pipeline

    yield make
    for pipeline, client in made:
        await pipeline.close()
        await client.aclose()


@contextlib.contextmanager
def paused(server):
    """Redis stopped with SIGSTOP: it accepts connections and answers nothing."""
    os.kill(server.proc.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(server.proc.pid, signal.SIGCONT)


def _checker(redis_of, port: int, password: str = "") -> aioredis.Redis:
    """A plain client whose connections `_no_other_connections` leaves out."""
    return redis_of(f"redis://:{password}@127.0.0.1:{port}/0?client_name=checker")


async def _no_other_connections(checker: aioredis.Redis) -> None:
    async def none_left() -> bool:
        return all(c["name"] == "checker" for c in await checker.client_list())

    await eventually(none_left, timeout=1.0, interval=0.01)


async def test_commands_of_one_loop_turn_reach_redis_and_return_in_order(
        private_redis, pipeline_for, redis_of):
    redis = private_redis()
    pipeline = pipeline_for(redis.url)
    await pipeline.execute("PING")  # connected: every call below is sent in one turn
    counter, keys = "counter", [f"key:{i}" for i in range(200)]
    results = await asyncio.gather(*(
        pipeline.execute_all(("INCRBY", keys[i], i), ("INCR", counter), ("GET", keys[i]))
        if i % 2 else pipeline.execute("INCR", counter) for i in range(200)))
    # Redis ran the commands in the order the callers issued them: the counter
    # says which place each caller had.
    assert [r if i % 2 == 0 else r[1] for i, r in enumerate(results)] == list(range(1, 201))
    assert all(results[i][::2] == [i, str(i).encode()] for i in range(1, 200, 2))
    stored = await redis_of(redis.url).mget(keys[1::2])
    assert stored == [str(i) for i in range(1, 200, 2)]


async def test_hung_redis_fails_waiting_calls_with_a_timeout_then_recovers(
        private_redis, pipeline_for):
    redis = private_redis()
    pipeline = pipeline_for(redis.url)
    await pipeline.execute("PING")
    loop = asyncio.get_running_loop()
    with paused(redis):
        started = loop.time()
        results = await asyncio.gather(*(pipeline.execute("INCR", "n") for _ in range(50)),
                                       return_exceptions=True)
        elapsed = loop.time() - started
        assert all(isinstance(r, TimeoutError) for r in results), results
        assert TIMEOUT * 0.9 <= elapsed < TIMEOUT + 0.5
        # A call on a new connection (the kernel still accepts it) times out too.
        started = loop.time()
        with pytest.raises(TimeoutError):
            await pipeline.execute("PING")
        assert loop.time() - started < TIMEOUT + 0.5
    assert await pipeline.execute("PING") == b"PONG"
    assert await pipeline.execute("INCR", "after") == 1


async def test_hung_redis_times_out_while_connecting_and_selecting_the_db(
        private_redis, pipeline_for):
    redis = private_redis()
    pipeline = pipeline_for(f"redis://127.0.0.1:{redis.port}/3")
    loop = asyncio.get_running_loop()
    with paused(redis):
        started = loop.time()
        with pytest.raises(TimeoutError):
            await pipeline.execute("PING")
        assert loop.time() - started < TIMEOUT + 0.5
    assert await pipeline.execute("PING") == b"PONG"


async def test_call_after_a_redis_restart_is_resent_once_on_a_new_connection(
        private_redis, pipeline_for, redis_of):
    redis = private_redis()
    pipeline = pipeline_for(redis.url)
    await pipeline.execute("PING")
    old = pipeline._conn
    # Both block the loop: the pipeline has not yet seen its connection close,
    # so the call below goes out on the broken one first.
    redis.stop()
    redis = private_redis(port=redis.port)
    assert old.alive
    assert await pipeline.execute("INCR", "n") == 1
    assert pipeline._conn is not old and not old.alive
    assert await redis_of(redis.url).get("n") == "1"


async def test_calls_in_flight_when_redis_is_killed_and_restarted_all_succeed(
        private_redis, pipeline_for, redis_of):
    redis = private_redis()
    pipeline = pipeline_for(redis.url)
    await pipeline.execute("PING")
    redis.kill()
    redis = private_redis(port=redis.port)
    replies = await asyncio.gather(*(pipeline.execute("INCR", f"k:{i}") for i in range(100)))
    assert replies == [1] * 100
    assert await redis_of(redis.url).dbsize() == 100


async def test_call_with_redis_down_fails_fast_with_a_connection_error(
        private_redis, pipeline_for):
    redis = private_redis()
    port = redis.port
    redis.stop()
    pipeline = pipeline_for(f"redis://127.0.0.1:{port}/0")
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(ConnectionRefusedError):
        await pipeline.execute("PING")
    assert loop.time() - started < TIMEOUT
    private_redis(port=port)
    assert await pipeline.execute("PING") == b"PONG"  # a failed connect is not sticky


async def test_unknown_script_raises_noscript_error(pipeline):
    with pytest.raises(NoScriptError):
        await pipeline.execute("EVALSHA", "0" * 40, 0)
    with pytest.raises(NoScriptError):
        await pipeline.execute_all(("PING",), ("EVALSHA", "0" * 40, 0))
    sha = await pipeline.execute("SCRIPT", "LOAD", "return 7")
    assert await pipeline.execute("EVALSHA", sha, 0) == 7


async def test_scripts_forgotten_by_a_restarted_redis_raise_noscript_error(
        private_redis, pipeline_for):
    redis = private_redis()
    pipeline = pipeline_for(redis.url)
    sha = await pipeline.execute("SCRIPT", "LOAD", "return 7")
    redis.stop()
    private_redis(port=redis.port)
    with pytest.raises(NoScriptError):
        await pipeline.execute("EVALSHA", sha, 0)


@pytest.fixture
def unix_redis(tmp_path):
    """A redis-server of the test's own listening on a unix socket only."""
    path = tmp_path / "redis.sock"
    proc = subprocess.Popen(
        [redis_server_binary(), "--port", "0", "--unixsocket", str(path), "--save", "",
         "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 5
        while not path.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "redis did not start"
            time.sleep(0.01)
        yield path
    finally:
        proc.terminate()
        proc.wait(5)


async def _writes_land_in_db_3_only(pipeline_for, redis_of, url: str, db0_url: str) -> None:
    assert await pipeline_for(url).execute("SET", "where", "db3") == b"OK"
    assert await redis_of(url).get("where") == "db3"
    assert await redis_of(db0_url).get("where") is None


async def test_unix_socket_and_db_of_the_url_are_used(unix_redis, pipeline_for, redis_of):
    await _writes_land_in_db_3_only(pipeline_for, redis_of, f"unix://{unix_redis}?db=3",
                                    f"unix://{unix_redis}?db=0")


async def test_password_and_db_of_the_url_are_used(private_redis, pipeline_for, redis_of):
    redis = private_redis()
    await redis_of(redis.url).config_set("requirepass", "pw")
    await _writes_land_in_db_3_only(pipeline_for, redis_of,
                                    f"redis://:pw@127.0.0.1:{redis.port}/3",
                                    f"redis://:pw@127.0.0.1:{redis.port}/0")


async def test_acl_user_of_the_url_is_used(private_redis, pipeline_for, redis_of):
    redis = private_redis()
    await redis_of(redis.url).acl_setuser("alice", enabled=True, passwords=["+secret"],
                                          keys=["*"], commands=["+@all"])
    url = f"redis://alice:secret@127.0.0.1:{redis.port}/0"
    assert await pipeline_for(url).execute("ACL", "WHOAMI") == b"alice"


async def test_wrong_or_missing_password_fails_with_a_clear_connection_error(
        private_redis, pipeline_for, redis_of):
    redis = private_redis()
    checker = _checker(redis_of, redis.port)
    await checker.config_set("requirepass", "pw")
    with pytest.raises(ConnectionError, match="WRONGPASS"):
        await pipeline_for(f"redis://:wrong@127.0.0.1:{redis.port}/3").execute("PING")
    with pytest.raises(ConnectionError, match="NOAUTH"):
        await pipeline_for(f"redis://127.0.0.1:{redis.port}/3").execute("PING")
    await _no_other_connections(checker)  # both refused connections were closed


async def test_no_commands_return_no_replies_and_leave_others_alone(redis_url, pipeline_for):
    pipeline = pipeline_for(redis_url)
    await pipeline.execute("PING")
    results = await asyncio.gather(pipeline.execute_all(), pipeline.execute("PING"),
                                   return_exceptions=True)
    assert results == [[], b"PONG"]


async def test_close_leaves_no_connection_open(private_redis, pipeline_for, redis_of):
    redis = private_redis()
    checker = _checker(redis_of, redis.port)
    pipeline = pipeline_for(redis.url)
    await pipeline.execute("PING")
    calls = [asyncio.ensure_future(pipeline.execute("INCR", "n")) for _ in range(10)]
    await asyncio.sleep(0)  # the calls are sent
    await pipeline.close()
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert all(isinstance(r, (ConnectionError, int)) for r in results), results
    with pytest.raises(ConnectionError, match="closed"):
        await pipeline.execute("PING")
    await _no_other_connections(checker)
