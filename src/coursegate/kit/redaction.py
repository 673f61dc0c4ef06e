"""Keep secrets, tokens and personal ids out of logs.

Two nets, because one is not enough: keys whose names say "secret" lose their
value, and any string that *looks* like a credential (a bearer token, one of
our API keys, a webhook secret, an HMAC header, a password in a URL) is masked
wherever it appears. Personal ids are replaced by a short stable digest so an
operator can still follow one learner through the logs without reading it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, MutableMapping
from typing import Any

REDACTED = "[REDACTED]"

_SECRET_KEY_PARTS = (
    "secret",
    "token",
    "password",
    "passwd",
    "authorization",
    "api_key",
    "apikey",
    "signature",
    "cookie",
    "credential",
    "dsn",
    "master_key",
)
_PERSONAL_KEYS = frozenset(
    {
        "person_id",
        "student_id",
        "user_id",
        "email",
        "identifier",
        "identifiers",
        "external_person_id",
    }
)

_VALUE_PATTERNS = [
    re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"),
    re.compile(r"\bcg_[A-Za-z0-9]+_[A-Za-z0-9_-]+"),
    re.compile(r"\bwhsec_[A-Za-z0-9+/=]+"),
    re.compile(r"(?i)(signature=)[^,\s]+"),
    re.compile(r"\bv1,[A-Za-z0-9+/=]{20,}"),
    re.compile(r"(?i)(://[^:/@\s]+:)[^@\s]+(@)"),
]


def personal_digest(value: object) -> str:
    digest = hashlib.sha256(str(value).encode()).hexdigest()[:12]
    return f"sha256:{digest}"


def _mask(match: re.Match[str]) -> str:
    groups = match.groups()
    if len(groups) == 2 and groups[1] == "@":
        return f"{groups[0]}{REDACTED}@"
    if groups and groups[0] and groups[0].lower().endswith("="):
        return f"{groups[0]}{REDACTED}"
    if groups and groups[0] and groups[0].lower() in {"bearer", "basic"}:
        return f"{groups[0]} {REDACTED}"
    return REDACTED


def scrub_text(text: str) -> str:
    for pattern in _VALUE_PATTERNS:
        text = pattern.sub(_mask, text)
    return text


def _is_secret_key(key: str) -> bool:
    lowered = key.lower()
    return any(part in lowered for part in _SECRET_KEY_PARTS)


def scrub(value: Any, key: str | None = None) -> Any:
    if key is not None:
        if _is_secret_key(key) and value is not None:
            return REDACTED
        if key.lower() in _PERSONAL_KEYS and value is not None:
            if isinstance(value, list | tuple):
                return [personal_digest(v) for v in value]
            return personal_digest(value)
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, Mapping):
        return {k: scrub(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    return value


def redact_processor(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: scrub every field of an event before it is rendered."""
    for key in list(event_dict.keys()):
        event_dict[key] = scrub(event_dict[key], None if key in {"event", "exception"} else key)
    return event_dict
