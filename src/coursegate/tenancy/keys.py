"""API key material: `cg_<prefix>_<secret>`, of which only a digest is stored."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

KEY_SCHEME = "cg"


@dataclass(frozen=True, slots=True)
class KeyMaterial:
    plaintext: str
    prefix: str
    digest: str


def digest_of(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def new_key() -> KeyMaterial:
    prefix = secrets.token_hex(6)
    plaintext = f"{KEY_SCHEME}_{prefix}_{secrets.token_urlsafe(32)}"
    return KeyMaterial(plaintext=plaintext, prefix=prefix, digest=digest_of(plaintext))


def prefix_of(plaintext: str) -> str | None:
    parts = plaintext.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_SCHEME or len(parts[1]) != 12 or not parts[2]:
        return None
    return parts[1]


def matches(plaintext: str, digest: str) -> bool:
    return hmac.compare_digest(digest_of(plaintext), digest)
