"""Where key secrets come from, so that none is ever written in code, config files or logs.

A key either names its secret by reference (`env:NAME`, `file:/run/secrets/x`;
a cloud secret manager is one more store under its own scheme), or the
service generates the secret and keeps it encrypted under the master key.
Errors carry a reason and at most the reference, never the value.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import PurePath
from typing import Annotated, Protocol

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import AfterValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from coursegate.kit.clock import Clock

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
MAX_FILE_PATH_LENGTH = 1024
# A secret is a line of text; the cap stops a mistaken ref to a log or a device from being slurped.
MAX_FILE_SECRET_BYTES = 64 * 1024


class SecretUnavailable(Exception):
    """A secret that cannot be had right now; `.reason` is a short machine string.

    Messages name the reference at most: a reference is configuration, the
    value behind it is not.
    """

    def __init__(self, reason: str, message: str | None = None) -> None:
        super().__init__(message or reason)
        self.reason = reason


class SecretStore(Protocol):
    def resolve(self, ref: str) -> str:
        """The secret behind a full reference such as `env:NAME`, or SecretUnavailable."""
        ...


def _is_env_ref(value: str) -> bool:
    return value.startswith("env:") and _ENV_NAME.fullmatch(value[4:]) is not None


def _is_file_ref(value: str) -> bool:
    path = value[5:]
    return (
        value.startswith("file:")
        and 0 < len(path) <= MAX_FILE_PATH_LENGTH
        and "\x00" not in path
        and PurePath(path).is_absolute()
    )


def check_secret_ref(value: str) -> str:
    """Validate a reference where it is configured, so a typo fails at save time, not at use.

    The message never echoes the value: someone may have pasted the secret itself.
    """
    if not (_is_env_ref(value) or _is_file_ref(value)):
        raise PydanticCustomError(
            "invalid", "not a secret reference: env:NAME or file:/absolute/path"
        )
    return value


SecretRef = Annotated[
    str,
    AfterValidator(check_secret_ref),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": f"^(env:{_ENV_NAME.pattern}|file:/[^\\x00]{{0,{MAX_FILE_PATH_LENGTH - 1}}})$",
        }
    ),
]


class EnvSecretStore:
    """`env:NAME`; the environ mapping is injectable so tests need not touch os.environ."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ: Mapping[str, str] = os.environ if environ is None else environ

    def resolve(self, ref: str) -> str:
        if not _is_env_ref(ref):
            raise SecretUnavailable("invalid_ref", "not an env:NAME reference")
        value = self._environ.get(ref[4:], "")
        if not value:
            # Unset and empty are one failure: an empty HMAC key would verify anything signed with "".
            raise SecretUnavailable("missing", f"{ref} is not set or empty")
        return value


def _strip_one_newline(text: str) -> str:
    """Editors and `echo` add one newline; anything beyond that the operator wrote on purpose."""
    if text.endswith("\r\n"):
        return text[:-2]
    if text.endswith("\n"):
        return text[:-1]
    return text


class FileSecretStore:
    """`file:/abs/path`, the shape of Docker and Kubernetes mounted secrets."""

    def resolve(self, ref: str) -> str:
        if not _is_file_ref(ref):
            raise SecretUnavailable("invalid_ref", "not a file:/absolute/path reference")
        try:
            # Bytes, not text mode: universal newlines would rewrite a \r\n inside the secret.
            with open(ref[5:], "rb") as handle:
                raw = handle.read(MAX_FILE_SECRET_BYTES + 1)
        except OSError as exc:
            raise SecretUnavailable(
                "unreadable", f"{ref} cannot be read ({exc.strerror})"
            ) from None
        if len(raw) > MAX_FILE_SECRET_BYTES:
            raise SecretUnavailable("too_large", f"{ref} is larger than a secret can be")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            # `from None`: the decode error quotes bytes of the secret.
            raise SecretUnavailable("unreadable", f"{ref} is not UTF-8 text") from None
        value = _strip_one_newline(text)
        if not value:
            raise SecretUnavailable("missing", f"{ref} is empty")
        return value


class SecretStores:
    """Dispatch on the scheme before the first ':'; each store sees the full reference."""

    def __init__(self, stores: Mapping[str, SecretStore]) -> None:
        self._stores = dict(stores)

    @classmethod
    def default_stores(cls) -> SecretStores:
        return cls({"env": EnvSecretStore(), "file": FileSecretStore()})

    def resolve(self, ref: str) -> str:
        scheme, sep, _ = ref.partition(":")
        store = self._stores.get(scheme) if sep else None
        if store is None:
            raise SecretUnavailable("unknown_scheme", "the reference has no known scheme")
        return store.resolve(ref)


def default_stores() -> SecretStores:
    """The stores every deployment has; add a secret manager's adapter next to these."""
    return SecretStores.default_stores()


class SecretBox:
    """Secrets the service generates, encrypted at rest so a database dump does not leak them.

    Given several master keys (newest first), it encrypts under the first and
    decrypts under any: that is what lets every process keep working while a
    rotation re-encrypts the stored rows one batch at a time.
    """

    def __init__(self, master_keys: bytes | Sequence[bytes]) -> None:
        keys = [master_keys] if isinstance(master_keys, bytes) else list(master_keys)
        if not keys:
            raise ValueError("no master key")
        try:
            fernets = [Fernet(key) for key in keys]
        except (ValueError, TypeError):
            # `from None`: the original error may quote the key.
            raise ValueError("the master key is not a Fernet key") from None
        self._current = fernets[0]
        self._fernet = MultiFernet(fernets)

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode("ascii")

    def decrypt(self, token: str) -> str:
        """Any bad token, including one made under another master key, is one reason."""
        try:
            return self._fernet.decrypt(token.encode()).decode("utf-8")
        except (InvalidToken, ValueError):
            raise SecretUnavailable(
                "undecryptable", "the stored secret cannot be decrypted"
            ) from None

    def is_current(self, token: str) -> bool:
        """Whether the token is already under the newest key (a rotation has nothing to do)."""
        try:
            self._current.decrypt(token.encode())
        except (InvalidToken, ValueError):
            return False
        return True

    def rotate(self, token: str) -> str:
        """The same secret under the newest key; SecretUnavailable if no key opens it."""
        try:
            return self._fernet.rotate(token.encode()).decode("ascii")
        except (InvalidToken, ValueError):
            raise SecretUnavailable(
                "undecryptable", "the stored secret cannot be decrypted"
            ) from None


@dataclass(frozen=True, slots=True)
class _Cached:
    value: str
    expires_at: datetime


class CachedResolver:
    """Keep hot paths off env and disk while still picking up a rotated file within the TTL.

    Only successes are cached: a secret that is missing now may be mounted a
    moment later, and a retry should see it.
    """

    def __init__(self, stores: SecretStores, clock: Clock, ttl_s: float = 60.0) -> None:
        if ttl_s < 0:
            raise ValueError("ttl_s cannot be negative")
        self._stores = stores
        self._clock = clock
        self._ttl = timedelta(seconds=ttl_s)
        self._cache: dict[str, _Cached] = {}

    def resolve(self, ref: str) -> str:
        now = self._clock.now()
        cached = self._cache.get(ref)
        if cached is not None and now < cached.expires_at:
            return cached.value
        value = self._stores.resolve(ref)
        self._cache[ref] = _Cached(value, now + self._ttl)
        return value
