"""Operator passwords: generated, hashed with Argon2id, verified off the event loop.

Argon2 is slow on purpose (tens of milliseconds and 64 MiB per hash), which is
what makes a stolen table expensive to guess at; run on the event loop it would
stall every other request for that long, so hashing and verifying go to a
thread.
"""

from __future__ import annotations

import asyncio
import secrets
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
GENERATED_PASSWORD_BYTES = 18


@cache
def _unknown_account_hash() -> str:
    """Verified against when the account does not exist, so that an unknown email takes as
    long to refuse as a wrong password (no account enumeration by timing). Made on first
    use, not at import: every command and process imports this module."""
    return _hasher.hash(secrets.token_urlsafe(GENERATED_PASSWORD_BYTES))


def generate() -> str:
    """A password of 144 random bits, shown once to whoever creates or resets the operator."""
    return secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


def _verify(stored: str | None, presented: str) -> bool:
    try:
        return _hasher.verify(stored or _unknown_account_hash(), presented)
    except (VerificationError, InvalidHashError):
        return False


async def verify(stored: str | None, presented: str) -> bool:
    """Whether `presented` is the password; `stored=None` (no such account) costs the same."""
    matched = await asyncio.to_thread(_verify, stored, presented)
    return matched and stored is not None
