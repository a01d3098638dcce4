"""A worker and clients written as the README shows them, against services with auth on:
BATON_TOKEN is what they send when given no token, and `AuthConfig.from_env()` finds
the key `baton up` keeps in the data directory."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid

import pytest
from pydantic import BaseModel

from baton_core import AuthConfig, NotFound, SettingError, Unauthenticated, struct_to_dict
from baton_core import constants as c
from baton_sdk import OrchestratorClient, RegistryClient, Worker, method

# What `AuthConfig.from_env()` reads; the test sets only what `baton up` would leave.
_AUTH_ENV = (c.ENV_JWT_SECRET, c.ENV_JWT_SECRET_FILE, c.ENV_JWT_PUBLIC_KEY_FILE,
             c.ENV_JWT_PRIVATE_KEY_FILE, c.ENV_API_KEYS_FILE, c.ENV_AUTH, c.ENV_TOKEN)


class Word(BaseModel):
    word: str


@pytest.fixture
def platform_env(monkeypatch, tmp_path, auth_keys):
    """The shell of a user of `baton up`: its data dir holds the secret, and
    BATON_TOKEN is exported; nothing else about auth is set."""
    for name in _AUTH_ENV:
        monkeypatch.delenv(name, raising=False)
    (tmp_path / c.JWT_SECRET_FILE_NAME).write_text(auth_keys.secret)
    monkeypatch.setenv(c.ENV_DATA_DIR, str(tmp_path))
    monkeypatch.setenv(c.ENV_JWT_ISSUER, auth_keys.issuer)
    monkeypatch.setenv(c.ENV_JWT_AUDIENCE, auth_keys.audience)
    return monkeypatch


async def test_a_readme_worker_registers_and_serves_with_baton_token_and_the_data_dir_key(
        secured, auth_keys, platform_env):
    name = f"sdkauth{uuid.uuid4().hex[:8]}.shout"

    @method(name=name, version="1.0.0", description="Shout a word")
    async def shout(params: Word) -> Word:
        return Word(word=params.word.upper())

    platform_env.setenv(c.ENV_TOKEN, auth_keys.token("worker:readme", ["worker"]))
    async with Worker(methods=[shout], registry_addr=secured.addrs["registry"],
                      auth=AuthConfig.from_env()):
        platform_env.setenv(c.ENV_TOKEN, auth_keys.token("alice", ["admin"]))
        async with OrchestratorClient(secured.addrs["orchestrator"]) as client:
            for _ in range(100):  # until the orchestrator's cache has the method
                try:
                    out = await client.dispatch(name, {"word": "hi"})
                    break
                except NotFound:  # until the registry's change reaches the orchestrator
                    await asyncio.sleep(0.1)
            else:
                out = await client.dispatch(name, {"word": "hi"})
    assert struct_to_dict(out.result) == {"word": "HI"}


async def test_clients_send_baton_token_only_when_given_no_token(secured, auth_keys,
                                                                 platform_env):
    async with RegistryClient(secured.addrs["registry"]) as client:
        with pytest.raises(Unauthenticated):
            await client.list_methods()
    platform_env.setenv(c.ENV_TOKEN, auth_keys.token("alice", ["viewer"]))
    async with RegistryClient(secured.addrs["registry"]) as client:
        await client.list_methods()
    async with RegistryClient(secured.addrs["registry"], token="") as client:
        with pytest.raises(Unauthenticated):
            await client.list_methods()


def test_a_worker_with_auth_on_and_no_key_refuses_to_start(monkeypatch, tmp_path):
    for name in _AUTH_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(c.ENV_DATA_DIR, str(tmp_path))  # no jwt-secret in it

    @method(name="nokey.echo", version="1.0.0")
    async def echo(params: Word) -> Word:
        return params

    with pytest.raises(SettingError, match="no key is configured"):
        Worker(methods=[echo], registry_addr=None, auth=AuthConfig.from_env())


async def test_an_api_key_in_baton_token_is_sent_as_one(secured, auth_keys, platform_env,
                                                        tmp_path):
    platform_env.setenv(c.ENV_TOKEN, auth_keys.api_key)  # an operator's key (conftest)
    async with RegistryClient(secured.addrs["registry"]) as client:
        await client.list_methods()
    env = {**os.environ, c.ENV_REGISTRY_ADDR: secured.addrs["registry"]}
    done = await asyncio.to_thread(subprocess.run, [
        sys.executable, "-m", "baton_cli", "methods", "list"], env=env, capture_output=True,
        text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "demo.echo" in done.stdout


def test_a_credential_for_an_unknown_role_is_refused_and_nothing_is_written(tmp_path):
    keys = tmp_path / "keys.yaml"
    for args in (["token", "--role", "superuser", "--data-dir", str(tmp_path)],
                 ["apikey", "create", "--subject", "ci", "--role", "admin", "--role", "root",
                  "--file", str(keys)]):
        (tmp_path / c.JWT_SECRET_FILE_NAME).write_text("s" * 40)
        done = subprocess.run([sys.executable, "-m", "baton_cli", *args], capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 2 and not done.stdout
        assert "unknown role(s)" in done.stderr and "Traceback" not in done.stderr
    assert not keys.exists()
