"""Auth for `baton up`: on by default, with a secret kept under the data directory."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from baton_core import AuthConfig, access, ensure_secret, issue_token
from baton_core import constants as c

_WORKER_TOKEN_TTL = 365 * 24 * 3600.0


def prepare_auth(data_dir: Path, say: Callable[[str], None]) -> dict[str, str]:
    """Makes sure the services can verify tokens; returns the example worker's env."""
    config = AuthConfig.from_env(data_dir)
    if not config.enabled:
        say(f"WARNING: authentication is OFF ({c.ENV_AUTH}=off): every caller is trusted")
        return {}
    configured = any(os.environ.get(n) for n in (
        c.ENV_JWT_SECRET, c.ENV_JWT_SECRET_FILE, c.ENV_JWT_PUBLIC_KEY_FILE))
    if not configured:
        path = ensure_secret(data_dir)
        say(f"authentication is on (JWT secret in {path})")
        config = AuthConfig.from_env(data_dir)
    if not (config.secret or config.private_key):
        return {}
    return {c.ENV_TOKEN: issue_token(config, "worker:example", [access.WORKER],
                                     ttl=_WORKER_TOKEN_TTL)}


def auth_hint(data_dir: Path, orchestrator: str) -> list[str]:
    """The lines `baton up` prints on how to call the platform."""
    if not AuthConfig.from_env(data_dir).enabled:
        return [f"try: grpcurl -plaintext {orchestrator} list    (Ctrl-C stops everything)"]
    return [f"get a token: export BATON_TOKEN=$(baton token --role admin --data-dir {data_dir})",
            "then:        grpcurl -plaintext -H \"authorization: Bearer $BATON_TOKEN\" "
            f"{orchestrator} list    (Ctrl-C stops everything)"]
