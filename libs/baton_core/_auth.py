"""Who is calling: JWT bearer tokens (HS256, RS256) and hashed API keys.

`AuthConfig.from_env` reads the settings; `Authenticator` turns call metadata
into an `Identity`; `issue_token` mints tokens (for `baton token` and for the
services' own credentials); `ServiceCredentials` is the metadata a service
sends when it calls another one, carrying the actor it acts for.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt

from . import _constants as c
from ._access import ADMIN, SERVICE, SERVICES_ONLY
from ._env import SettingError, yaml_setting_file
from ._errors import Unauthenticated

log = logging.getLogger("baton.auth")

_CACHE_SIZE = 10_000
# How often a service looks at BATON_API_KEYS_FILE for a change (at most once
# per this many seconds, when an API key is presented).
KEYS_RECHECK_SECONDS = 1.0


@dataclass(frozen=True)
class Identity:
    """An authenticated caller.

    Attributes:
        subject: Who the caller is (the token's `sub`, the API key's subject).
        roles: Roles the caller holds.
        via: For a call a service made on someone's behalf, the service.
    """

    subject: str
    roles: tuple[str, ...] = ()
    via: str = ""

    def has_any(self, roles: frozenset[str]) -> bool:
        """Whether the identity holds one of `roles`; an admin passes every check but
        the services' own (SERVICES_ONLY)."""
        if not roles.isdisjoint(self.roles):
            return True
        return ADMIN in self.roles and roles != SERVICES_ONLY


ANONYMOUS = Identity("anonymous", (ADMIN,))


@dataclass(frozen=True)
class ApiKey:
    subject: str
    roles: tuple[str, ...]


def credential_header(credential: str) -> tuple[str, str]:
    """The metadata that presents `credential`: an API key (`bk_...`) as
    `x-api-key`, anything else as a bearer token."""
    if credential.startswith(c.API_KEY_PREFIX):
        return (c.API_KEY_HEADER, credential)
    return (c.AUTHORIZATION_HEADER, f"Bearer {credential}")


def hash_api_key(key: str) -> str:
    """The form in which API keys are stored (keys are random, so SHA-256 suffices)."""
    return hashlib.sha256(key.encode()).hexdigest()


def _env(name: str) -> str:
    return os.environ.get(name, "").strip()


def _read(path: str | Path, setting: str = "") -> str:
    """The key in the file `setting` names, stripped; SettingError naming the setting
    and the file when it cannot be read as text."""
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else \
            "not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else str(exc)
        where = f"{setting}={path}" if setting.startswith("BATON_") else f"{setting} {path}"
        raise SettingError(f"{where.strip()}: cannot be read: {why}") from None


def load_api_keys(path: str | Path) -> dict[str, ApiKey]:
    """Reads `keys: [{subject, sha256, roles}]` from a YAML file; SettingError
    naming the file and the entry when it cannot be used."""
    return api_keys_from(yaml_setting_file(c.ENV_API_KEYS_FILE, path), path)


def api_keys_from(data: Mapping[str, Any], path: str | Path) -> dict[str, ApiKey]:
    """The keys of a keys file's content `data` (read from `path`, named in errors)."""
    entries = data.get("keys") or []
    where = f"{c.ENV_API_KEYS_FILE}={path}"
    if not isinstance(entries, list):
        raise SettingError(f"{where}: keys: must be a list of {{subject, sha256, roles}}")
    keys = {}
    for i, entry in enumerate(entries):
        if not isinstance(entry, Mapping) or not all(
                isinstance(entry.get(k), str) and entry.get(k) for k in ("subject", "sha256")):
            raise SettingError(f"{where}: keys[{i}]: needs a subject and a sha256 (strings)")
        roles = entry.get("roles") or ()
        if not isinstance(roles, list | tuple) or not all(isinstance(r, str) for r in roles):
            raise SettingError(f"{where}: keys[{i}].roles: must be a list of role names")
        keys[entry["sha256"]] = ApiKey(entry["subject"], tuple(roles))
    return keys


def _file_stamp(path: str) -> tuple[int, int, int] | None:
    """What changes when a file is written or replaced; None when it is not there."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def default_secret_path(data_dir: str | Path) -> Path:
    return Path(data_dir) / c.JWT_SECRET_FILE_NAME


def ensure_secret(data_dir: str | Path) -> Path:
    """Creates the HS256 secret under `data_dir` on first use; returns its path."""
    path = default_secret_path(data_dir)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(48))
    return path


@dataclass(frozen=True)
class AuthConfig:
    """Authentication settings; `enabled=False` lets every call in."""

    enabled: bool = True
    secret: str = ""
    public_key: str = ""
    private_key: str = ""
    issuer: str = c.DEFAULT_JWT_ISSUER
    audience: str = c.DEFAULT_JWT_AUDIENCE
    api_keys: Mapping[str, ApiKey] = field(default_factory=dict)
    # Where api_keys were read from: a change there is taken up while serving.
    api_keys_file: str = ""

    @classmethod
    def from_env(cls, data_dir: str | Path | None = None) -> AuthConfig:
        """From BATON_AUTH, BATON_JWT_* and BATON_API_KEYS_FILE; without a secret
        set, the one `baton up` keeps under `data_dir` is used when it exists
        (`data_dir` None: BATON_DATA_DIR, else `./.baton`, as `baton up`'s)."""
        if data_dir is None:
            data_dir = _env(c.ENV_DATA_DIR) or c.DEFAULT_DATA_DIR
        mode = (_env(c.ENV_AUTH) or "on").lower()
        if mode not in ("on", "off", "true", "false", "1", "0"):
            raise SettingError(f"{c.ENV_AUTH} must be on or off, not {mode!r}")
        secret = _env(c.ENV_JWT_SECRET)
        if not secret and _env(c.ENV_JWT_SECRET_FILE):
            secret = _read(_env(c.ENV_JWT_SECRET_FILE), c.ENV_JWT_SECRET_FILE)
        public = (_read(_env(c.ENV_JWT_PUBLIC_KEY_FILE), c.ENV_JWT_PUBLIC_KEY_FILE)
                  if _env(c.ENV_JWT_PUBLIC_KEY_FILE) else "")
        private = (_read(_env(c.ENV_JWT_PRIVATE_KEY_FILE), c.ENV_JWT_PRIVATE_KEY_FILE)
                   if _env(c.ENV_JWT_PRIVATE_KEY_FILE) else "")
        if not secret and not public and data_dir is not None:
            path = default_secret_path(data_dir)
            if path.exists():
                secret = _read(path, "the JWT secret of `baton up`,")
        keys_file = _env(c.ENV_API_KEYS_FILE)
        keys = load_api_keys(keys_file) if keys_file else {}
        return cls(enabled=mode in ("on", "true", "1"), secret=secret, public_key=public,
                   private_key=private, issuer=_env(c.ENV_JWT_ISSUER) or c.DEFAULT_JWT_ISSUER,
                   audience=_env(c.ENV_JWT_AUDIENCE) or c.DEFAULT_JWT_AUDIENCE, api_keys=keys,
                   api_keys_file=keys_file)

    def check(self) -> None:
        """Raises when auth is on but nothing could verify a credential."""
        if self.enabled and not (self.secret or self.public_key or self.api_keys):
            raise SettingError(
                f"authentication is on but no key is configured: set {c.ENV_JWT_SECRET} "
                f"(or {c.ENV_JWT_SECRET_FILE}), {c.ENV_JWT_PUBLIC_KEY_FILE} or "
                f"{c.ENV_API_KEYS_FILE}, or turn it off explicitly with {c.ENV_AUTH}=off")


def issue_token(config: AuthConfig, subject: str, roles: Sequence[str],
                ttl: float = 3600.0, **claims) -> str:
    """A signed JWT for `subject` (HS256 with the secret, else RS256 with the private key);
    SettingError when the private key cannot sign."""
    now = int(time.time())
    payload = {"sub": subject, "roles": list(roles), "iss": config.issuer,
               "aud": config.audience, "iat": now, "exp": now + int(ttl), **claims}
    if config.secret:
        return jwt.encode(payload, config.secret, algorithm="HS256")
    if config.private_key:
        try:
            return jwt.encode(payload, config.private_key, algorithm="RS256")
        except (jwt.PyJWTError, ValueError) as exc:
            raise SettingError(f"{c.ENV_JWT_PRIVATE_KEY_FILE}: cannot sign with it: {exc}"
                               ) from None
    raise RuntimeError("no signing key: need a JWT secret or a private key to issue tokens")


def _roles(claim) -> tuple[str, ...]:
    if isinstance(claim, str):
        return tuple(r for r in claim.replace(",", " ").split() if r)
    if isinstance(claim, list | tuple):
        return tuple(str(r) for r in claim)
    return ()


class Authenticator:
    """Verifies bearer tokens and API keys; verified tokens are cached until they expire."""

    def __init__(self, config: AuthConfig) -> None:
        self.config = config
        self._cache: dict[str, tuple[Identity, float]] = {}
        self._keys = config.api_keys
        self._keys_stamp = _file_stamp(config.api_keys_file) if config.api_keys_file else None
        self._keys_checked = time.monotonic()

    def _api_keys(self) -> Mapping[str, ApiKey]:
        """The API keys in force: those of the keys file as it is now (looked at
        once a second at most), so a key created or revoked there counts without
        a restart. A file that cannot be used leaves the keys read before in force
        (and says so); a file that is gone means no keys."""
        path = self.config.api_keys_file
        if not path or time.monotonic() - self._keys_checked < KEYS_RECHECK_SECONDS:
            return self._keys
        self._keys_checked = time.monotonic()
        stamp = _file_stamp(path)
        if stamp == self._keys_stamp:
            return self._keys
        self._keys_stamp = stamp
        if stamp is None:
            log.warning("%s=%s is gone: no API key is accepted until it is back",
                        c.ENV_API_KEYS_FILE, path)
            self._keys = {}
            return self._keys
        try:
            self._keys = load_api_keys(path)
        except Exception as exc:  # noqa: BLE001 - whatever it is, the keys in force stay
            log.error("%s; the API keys read before stay in force until it is fixed",
                      exc if isinstance(exc, SettingError)
                      else f"{c.ENV_API_KEYS_FILE}={path}: {type(exc).__name__}: {exc}")
            return self._keys
        log.info("API keys read again from %s=%s: %d keys", c.ENV_API_KEYS_FILE, path,
                 len(self._keys))
        return self._keys

    def authenticate(self, authorization: str, api_key: str) -> Identity:
        """The caller named by an `authorization` header or an API key.

        Raises:
            Unauthenticated: Missing, malformed, expired or unknown credentials.
        """
        if authorization:
            scheme, _, credential = authorization.partition(" ")
            scheme = scheme.lower()
            if scheme == "bearer" and credential:
                return self.verify_token(credential.strip())
            if scheme == "apikey" and credential:
                return self.verify_api_key(credential.strip())
            raise Unauthenticated("authorization must be `Bearer <token>` or `ApiKey <key>`",
                                  reason="CREDENTIALS_MALFORMED")
        if api_key:
            return self.verify_api_key(api_key)
        raise Unauthenticated("this call needs credentials: send `authorization: Bearer "
                              "<token>` (get one with `baton token --role ...`) or an API key",
                              reason="CREDENTIALS_MISSING")

    def verify_api_key(self, key: str) -> Identity:
        entry = self._api_keys().get(hash_api_key(key))
        if entry is None:
            raise Unauthenticated("unknown API key", reason="API_KEY_INVALID")
        return Identity(entry.subject, entry.roles)

    def verify_token(self, token: str) -> Identity:
        cached = self._cache.get(token)
        if cached is not None and cached[1] > time.time():
            return cached[0]
        claims = self._decode(token)
        identity = Identity(str(claims["sub"]), _roles(claims.get("roles")))
        if len(self._cache) >= _CACHE_SIZE:
            self._cache.clear()
        self._cache[token] = (identity, float(claims["exp"]))
        return identity

    def _decode(self, token: str) -> dict:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            # (PyJWT's text can quote a codec's complaint about the bytes: not for callers.)
            raise Unauthenticated("malformed token: not a JWT (three base64url parts, the "
                                  "first a JSON header)", reason="TOKEN_INVALID") from None
        alg = str(header.get("alg"))
        key = {"HS256": self.config.secret, "RS256": self.config.public_key}.get(alg)
        if not key:
            raise Unauthenticated(f"tokens signed with {alg} are not accepted here",
                                  reason="TOKEN_INVALID")
        try:
            return jwt.decode(token, key, algorithms=[alg], audience=self.config.audience,
                              issuer=self.config.issuer,
                              options={"require": ["exp", "sub", "iss", "aud"]})
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("token expired", reason="TOKEN_EXPIRED") from None
        except jwt.ImmatureSignatureError as exc:
            # nbf or iat ahead of this clock: a token for later, or a clock that is off.
            raise Unauthenticated(f"token is not valid yet ({exc})",
                                  reason="TOKEN_NOT_YET_VALID") from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated(f"token is not for audience {self.config.audience!r}",
                                  reason="TOKEN_WRONG_AUDIENCE") from None
        except jwt.InvalidIssuerError:
            raise Unauthenticated(f"token is not from issuer {self.config.issuer!r}",
                                  reason="TOKEN_WRONG_ISSUER") from None
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"invalid token: {exc}", reason="TOKEN_INVALID") from None


class ServiceCredentials:
    """The metadata one service sends to another: its own credentials plus the
    actor (and roles) it acts for, which the receiver trusts from `service` callers.

    With a signing key the service mints its own short-lived token; otherwise
    it sends BATON_SERVICE_TOKEN or BATON_SERVICE_API_KEY.
    """

    def __init__(self, config: AuthConfig, service: str, ttl: float = 3600.0) -> None:
        self.config = config
        self.subject = f"service:{service}"
        self._ttl = ttl
        self._token = ""
        self._renew_at = 0.0
        self._static: tuple[tuple[str, str], ...] = ()
        if _env(c.ENV_SERVICE_TOKEN):
            self._static = ((c.AUTHORIZATION_HEADER, f"Bearer {_env(c.ENV_SERVICE_TOKEN)}"),)
        elif _env(c.ENV_SERVICE_API_KEY):
            self._static = ((c.API_KEY_HEADER, _env(c.ENV_SERVICE_API_KEY)),)

    def own(self) -> tuple[tuple[str, str], ...]:
        """The service's own credentials (empty with auth off)."""
        if not self.config.enabled or self._static:
            return self._static
        now = time.time()
        if now >= self._renew_at:
            self._token = issue_token(self.config, self.subject, [SERVICE], ttl=self._ttl)
            self._renew_at = now + self._ttl / 2
        return ((c.AUTHORIZATION_HEADER, f"Bearer {self._token}"),)

    def on_behalf_of(self, identity: Identity | None) -> tuple[tuple[str, str], ...]:
        """Own credentials plus the actor and roles of `identity`."""
        own = self.own()
        if identity is None:
            return own
        return (*own, (c.ACTOR_HEADER, identity.subject),
                (c.ROLES_HEADER, ",".join(identity.roles)))
