"""Credentials: API keys, RS256, delegation between services, and turning auth off."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import grpc
import pytest
import yaml

from baton.orchestrator.v1 import audit_pb2, audit_pb2_grpc, policies_pb2, policies_pb2_grpc
from baton.registry.v1 import registry_pb2, registry_pb2_grpc
from baton_core import (
    AuthConfig,
    Authenticator,
    SettingError,
    Unauthenticated,
    auth_interceptor,
    from_rpc_error,
    load_api_keys,
)


async def test_api_keys_authenticate_in_either_header(secured_channels, auth_keys):
    stub = policies_pb2_grpc.PolicyEngineStub(secured_channels["orchestrator"])
    for metadata in ((("x-api-key", auth_keys.api_key),),
                     (("authorization", f"ApiKey {auth_keys.api_key}"),)):
        reply = await stub.ExplainPolicy(
            policies_pb2.ExplainPolicyRequest(operation="demo.echo"), metadata=metadata)
        assert reply.actor == "ci-bot" and list(reply.roles) == ["operator"]


async def test_rs256_tokens_name_their_subject(secured_channels, auth_keys):
    stub = policies_pb2_grpc.PolicyEngineStub(secured_channels["orchestrator"])
    reply = await stub.ExplainPolicy(
        policies_pb2.ExplainPolicyRequest(operation="demo.echo"),
        metadata=auth_keys.bearer("rita", ["viewer"], alg="RS256"))
    assert reply.actor == "rita" and list(reply.roles) == ["viewer"]


async def test_error_details_say_why_a_call_was_refused(secured_channels, auth_keys):
    stub = registry_pb2_grpc.MethodRegistryStub(secured_channels["registry"])
    cases = {"TOKEN_EXPIRED": auth_keys.bearer(ttl=-60),
             "TOKEN_WRONG_AUDIENCE": auth_keys.bearer(aud="elsewhere"),
             "CREDENTIALS_MISSING": ()}
    for reason, metadata in cases.items():
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ListMethods(registry_pb2.ListMethodsRequest(), metadata=metadata)
        assert from_rpc_error(caught.value).reason == reason


async def test_a_token_for_later_is_refused_as_not_valid_yet(secured_channels, auth_keys):
    import time

    stub = registry_pb2_grpc.MethodRegistryStub(secured_channels["registry"])
    later = int(time.time()) + 600
    for claims in ({"nbf": later}, {"iat": later}):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ListMethods(registry_pb2.ListMethodsRequest(),
                                   metadata=auth_keys.bearer(**claims))
        error = from_rpc_error(caught.value)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert error.reason == "TOKEN_NOT_YET_VALID", claims
        assert error.message.startswith("token is not valid yet")


async def test_only_services_may_name_the_actor_they_act_for(secured_channels, auth_keys):
    orchestrator = secured_channels["orchestrator"]
    policies = policies_pb2_grpc.PolicyEngineStub(orchestrator)
    request = policies_pb2.ExplainPolicyRequest(operation="demo.echo")
    spoof = (("x-baton-actor", "the-boss"), ("x-baton-roles", "admin"))
    mallory = await policies.ExplainPolicy(
        request, metadata=(*auth_keys.bearer("mallory", ["viewer"]), *spoof))
    assert mallory.actor == "mallory" and list(mallory.roles) == ["viewer"]
    carried = await policies.ExplainPolicy(
        request, metadata=(*auth_keys.bearer("service:sessions", ["service"]), *spoof))
    assert carried.actor == "the-boss" and list(carried.roles) == ["admin"]
    # Audit records of such calls name the actor and the service that carried it.
    written = await audit_pb2_grpc.AuditLogStub(orchestrator).WriteAuditRecords(
        audit_pb2.WriteAuditRecordsRequest(records=[audit_pb2.AuditRecord(
            record_id="aud_test_1", actor="the-boss", via="service:sessions",
            action="create", entity_type="session", entity="s1")]),
        metadata=auth_keys.bearer("service:sessions", ["service"]))
    assert written.written == 1
    for roles in (["operator"], ["admin"]):  # only services write records, not even admins
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await audit_pb2_grpc.AuditLogStub(orchestrator).WriteAuditRecords(
                audit_pb2.WriteAuditRecordsRequest(), metadata=auth_keys.bearer(roles=roles))
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_apikey_command_stores_only_the_hash(tmp_path, monkeypatch):
    keys = tmp_path / "keys.yaml"
    done = subprocess.run([sys.executable, "-m", "baton_cli", "apikey", "create", "--subject",
                           "ci", "--role", "operator", "--file", str(keys)],
                          capture_output=True, text=True, timeout=60, check=True)
    key = done.stdout.strip()
    assert key.startswith("bk_") and key not in keys.read_text()
    (entry,) = yaml.safe_load(keys.read_text())["keys"]
    assert entry["subject"] == "ci"
    monkeypatch.setenv("BATON_API_KEYS_FILE", str(keys))
    identity = Authenticator(AuthConfig.from_env()).verify_api_key(key)
    assert identity.subject == "ci" and identity.roles == ("operator",)

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "baton_cli", "apikey", *args, "--file",
                               str(keys)], capture_output=True, text=True, timeout=60)

    listed = cli("list")
    assert listed.returncode == 0 and listed.stdout.startswith("ci\toperator\tsha256:")
    assert key not in listed.stdout
    revoked = cli("revoke", "--subject", "ci")
    assert revoked.returncode == 0 and "revoked 1 key(s) of ci" in revoked.stdout
    assert yaml.safe_load(keys.read_text())["keys"] == []
    again = cli("revoke", "--subject", "ci")
    assert again.returncode == 2 and "no key of 'ci'" in again.stderr


def test_auth_off_is_a_warning_at_every_start(caplog):
    with caplog.at_level(logging.WARNING, logger="baton.auth"):
        auth_interceptor(AuthConfig(enabled=False))
    assert "AUTHENTICATION IS OFF" in caplog.text


def test_auth_on_without_any_key_refuses_to_start(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATON_")}
    env.update({"BATON_AUTH": "on", "BATON_DATA_DIR": str(tmp_path),
                "BATON_LISTEN": "127.0.0.1:0"})
    done = subprocess.run([sys.executable, "-m", "baton_cli", "serve", "registry"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "no key is configured" in done.stderr and "BATON_AUTH=off" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) <= 3


BAD_KEY_FILES = [
    ("keys: [\n", "not valid YAML: expected the node content, but found '<stream end>' "
     "at line 2, column 1"),
    ("- a\n", "expected a mapping at the top level"),
    ("keys: 5\n", "keys: must be a list of {subject, sha256, roles}"),
    ("keys:\n  - subject: ci\n", "keys[0]: needs a subject and a sha256 (strings)"),
    ("keys:\n  - {subject: ci, sha256: ab, roles: operator}\n",
     "keys[0].roles: must be a list of role names"),
]


@pytest.mark.parametrize(("content", "problem"), BAD_KEY_FILES)
def test_an_api_keys_file_that_cannot_be_used_names_the_setting_the_file_and_the_place(
        tmp_path, content, problem):
    keys = tmp_path / "keys.yaml"
    keys.write_text(content)
    with pytest.raises(SettingError) as caught:
        load_api_keys(keys)
    assert str(caught.value) == f"BATON_API_KEYS_FILE={keys}: {problem}"


def test_a_service_given_an_unusable_keys_file_says_so_and_does_not_start(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATON_")}
    env.update({"BATON_AUTH": "on", "BATON_DATA_DIR": str(tmp_path),
                "BATON_LISTEN": "127.0.0.1:0",
                "BATON_API_KEYS_FILE": str(tmp_path / "missing.yaml")})
    done = subprocess.run([sys.executable, "-m", "baton_cli", "serve", "registry"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert (f"BATON_API_KEYS_FILE={tmp_path / 'missing.yaml'}: cannot be read: "
            "No such file or directory") in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) <= 3


def test_apikey_create_refuses_a_keys_file_it_cannot_read_and_leaves_it_alone(tmp_path):
    keys = tmp_path / "keys.yaml"
    keys.write_text("keys: [\n")
    done = subprocess.run([sys.executable, "-m", "baton_cli", "apikey", "create", "--subject",
                           "ci", "--role", "operator", "--file", str(keys)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and not done.stdout
    said = " ".join(done.stderr.replace("│", " ").split())
    assert "not valid YAML" in said and "nothing was written" in said, said
    assert "Traceback" not in said
    assert keys.read_text() == "keys: [\n"


def test_a_command_that_reads_an_unusable_keys_file_says_so_in_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATON_")}
    env["BATON_API_KEYS_FILE"] = str(tmp_path / "missing.yaml")
    done = subprocess.run([sys.executable, "-m", "baton_cli", "token", "--role", "admin",
                           "--data-dir", str(tmp_path)], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2 and not done.stdout
    assert done.stderr == (f"baton: BATON_API_KEYS_FILE={tmp_path / 'missing.yaml'}: "
                           "cannot be read: No such file or directory\n")


async def test_a_key_created_or_revoked_in_the_keys_file_counts_without_a_restart(
        secured_channels, auth_keys):
    import asyncio
    import time

    stub = registry_pb2_grpc.MethodRegistryStub(secured_channels["registry"])

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "baton_cli", "apikey", *args, "--file",
                               str(auth_keys.api_keys_path)], capture_output=True, text=True,
                              timeout=60, check=True)

    async def code_within(key: str, seconds: float, want: grpc.StatusCode | None):
        deadline = time.monotonic() + seconds
        while True:
            try:
                await stub.ListMethods(registry_pb2.ListMethodsRequest(),
                                       metadata=(("x-api-key", key),))
                code = None
            except grpc.aio.AioRpcError as exc:
                code = exc.code()
            if code == want or time.monotonic() > deadline:
                return code
            await asyncio.sleep(0.2)

    key = (await asyncio.to_thread(cli, "create", "--subject", "late-bot", "--role",
                                   "viewer")).stdout.strip()
    assert await code_within(key, 10, None) is None  # the service took it up
    await asyncio.to_thread(cli, "revoke", "--subject", "late-bot")
    assert await code_within(key, 10, grpc.StatusCode.UNAUTHENTICATED) \
        == grpc.StatusCode.UNAUTHENTICATED
    # The keys that stayed in the file still work.
    await stub.ListMethods(registry_pb2.ListMethodsRequest(),
                           metadata=(("x-api-key", auth_keys.api_key),))


def test_a_keys_file_broken_while_serving_leaves_the_keys_read_before(tmp_path, caplog):
    from baton_core import _auth

    keys = tmp_path / "keys.yaml"
    done = subprocess.run([sys.executable, "-m", "baton_cli", "apikey", "create", "--subject",
                           "ci", "--role", "operator", "--file", str(keys)],
                          capture_output=True, text=True, timeout=60, check=True)
    key = done.stdout.strip()
    authenticator = Authenticator(AuthConfig(secret="s", api_keys=load_api_keys(keys),
                                             api_keys_file=str(keys)))
    assert authenticator.verify_api_key(key).subject == "ci"
    for broken in ("keys: {not: a list}\n", "keys: [{subject: x, sha256: abc, roles: 5}]\n"):
        keys.write_text(broken)
        authenticator._keys_checked -= _auth.KEYS_RECHECK_SECONDS  # as if a second passed
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="baton.auth"):
            assert authenticator.verify_api_key(key).subject == "ci"
        assert "stay in force" in caplog.text and str(keys) in caplog.text
    keys.unlink()  # gone: no key counts any more
    authenticator._keys_checked -= _auth.KEYS_RECHECK_SECONDS
    with pytest.raises(Unauthenticated) as caught:
        authenticator.verify_api_key(key)
    assert caught.value.reason == "API_KEY_INVALID"


@pytest.mark.parametrize("token", ["abc.def.ghi", "not-a-token", "a.b"])
def test_a_token_that_is_no_jwt_says_so_without_the_parsers_internals(token):
    with pytest.raises(Unauthenticated) as caught:
        Authenticator(AuthConfig(secret="s")).verify_token(token)
    assert caught.value.reason == "TOKEN_INVALID"
    assert caught.value.message.startswith("malformed token: not a JWT")
    assert "codec" not in caught.value.message and "byte" not in caught.value.message
