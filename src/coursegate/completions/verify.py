"""Who is calling: a provider's request checked against its active keys, before any parsing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from coursegate.completions.repository import KeySecret, ProviderContext
from coursegate.kit.secrets import CachedResolver, SecretBox, SecretUnavailable
from coursegate.kit.signing import (
    SignatureError,
    parse_hmac_authorization,
    parse_standard_headers,
    verify_hmac,
    verify_standard,
)


@dataclass(frozen=True, slots=True)
class Verified:
    key_id: str
    webhook_id: str | None
    """Standard Webhooks' `webhook-id`, which serves as the idempotency key."""


class KeySecrets:
    """Turns a stored key into its secret: decrypted, or resolved through the secret store."""

    CACHE_SIZE = 4096

    def __init__(self, box: SecretBox, resolver: CachedResolver) -> None:
        self.box = box
        self.resolver = resolver
        # Keyed by the ciphertext itself, so a new or rotated key is a new entry
        # and nothing can go stale; decrypting on every request cost more than
        # the signature check.
        self._decrypted: dict[str, str] = {}

    def secret(self, key: KeySecret) -> str:
        if key.secret_encrypted is not None:
            cached = self._decrypted.get(key.secret_encrypted)
            if cached is None:
                cached = self.box.decrypt(key.secret_encrypted)
                if len(self._decrypted) >= self.CACHE_SIZE:
                    self._decrypted.clear()
                self._decrypted[key.secret_encrypted] = cached
            return cached
        if key.secret_ref is not None:
            return self.resolver.resolve(key.secret_ref)
        raise SecretUnavailable("no_secret")


def claimed_key_id(headers: Mapping[str, str]) -> str | None:
    """The key id a request claims, for the audit trail even when verification fails."""
    try:
        return parse_hmac_authorization(headers.get("authorization")).key_id[:63]
    except SignatureError:
        return None


def verify_request(
    ctx: ProviderContext,
    secrets: KeySecrets,
    *,
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes,
    now: datetime,
) -> Verified:
    """Raises SignatureError (with a reason for the audit) on any failure."""
    if ctx.scheme == "hmac-authorization":
        auth = parse_hmac_authorization(headers.get("authorization"))
        key = next((k for k in ctx.keys if k.key_id == auth.key_id), None)
        if key is None:
            raise SignatureError("unknown_key")
        verify_hmac(auth, _secret(secrets, key), method, path, body, now)
        return Verified(key_id=key.key_id, webhook_id=None)
    parsed = parse_standard_headers(headers)
    if not ctx.keys:
        raise SignatureError("unknown_key")
    index = verify_standard(parsed, [_secret(secrets, k) for k in ctx.keys], body, now)
    return Verified(key_id=ctx.keys[index].key_id, webhook_id=parsed.msg_id)


def _secret(secrets: KeySecrets, key: KeySecret) -> str:
    try:
        return secrets.secret(key)
    except SecretUnavailable:
        raise SignatureError("secret_unavailable") from None
