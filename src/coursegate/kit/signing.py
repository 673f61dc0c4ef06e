"""Request signatures for the two schemes partners use: our HMAC header and Standard Webhooks.

Nothing here knows about programs or keys in the database: callers look the
key up and hand the secret in. Time is always injected, so a replayed request
is judged against the clock the caller trusts (and tests never sleep), and every
failure on input that came off the wire is a `SignatureError` with a short
machine reason, so the HTTP layer can turn all of them into one 401.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from secrets import token_bytes, token_urlsafe

from standardwebhooks.webhooks import Webhook

DEFAULT_TOLERANCE_S = 300

HMAC_SCHEME = "HMAC-SHA256"
_HMAC_PARAMETERS = ("KeyId", "Signature", "Timestamp")
# A real header is ~150 characters; the cap keeps a hostile one out of the parser and the logs.
_MAX_AUTHORIZATION_LENGTH = 2048
# Visible ASCII without the comma that separates parameters.
_PARAMETER_VALUE = re.compile(r"[!-+\--~]+")
# Twelve digits reach the year 33658; more can only be an attack on int() or datetime.
_TIMESTAMP = re.compile(r"[0-9]{1,12}")

WHSEC_PREFIX = "whsec_"
WHSEC_MIN_BYTES = 24
WHSEC_MAX_BYTES = 64
MAX_MSG_ID_LENGTH = 255
_HEADER_ID = "webhook-id"
_HEADER_TIMESTAMP = "webhook-timestamp"
_HEADER_SIGNATURE = "webhook-signature"
_STANDARD_HEADERS = (_HEADER_ID, _HEADER_TIMESTAMP, _HEADER_SIGNATURE)


class SignatureError(Exception):
    """A request whose signature cannot be trusted; `.reason` says why, for logs and metrics.

    The message never carries the signature or the secret, only the reason.
    """

    def __init__(self, reason: str, message: str | None = None) -> None:
        super().__init__(message or reason)
        self.reason = reason


# --- shared ----------------------------------------------------------------------------


def _parse_timestamp(value: str) -> int:
    """Plain digits only: `int()` would also take signs, spaces, underscores and other scripts' digits."""
    if _TIMESTAMP.fullmatch(value) is None:
        raise SignatureError("malformed_timestamp", "the timestamp is not whole unix seconds")
    return int(value)


def _unix_seconds(at: datetime) -> int:
    if at.tzinfo is None:
        raise ValueError("a timezone-aware datetime is needed; a naive one has no instant")
    return math.floor(at.timestamp())


def check_timestamp(timestamp: int, now: datetime, tolerance_s: int = DEFAULT_TOLERANCE_S) -> None:
    """Bound replays to a window around `now`, in both directions since clocks drift either way.

    Whole seconds on both sides (headers carry whole seconds), so exactly
    `tolerance_s` apart is still accepted.
    """
    if abs(timestamp - _unix_seconds(now)) > tolerance_s:
        raise SignatureError("timestamp_skew", "the timestamp is outside the accepted window")


def _b64decode_strict(value: str) -> bytes | None:
    """None for anything that is not standard base64, so a garbled signature is just a mismatch."""
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:  # binascii.Error, or non-ASCII text
        return None


# --- HMAC-SHA256 Authorization header --------------------------------------------------


@dataclass(frozen=True, slots=True)
class HmacAuthorization:
    key_id: str
    signature: str
    timestamp: int


def _split_parameters(params: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for index, part in enumerate(params.split(",")):
        item = part.lstrip(" ") if index else part
        name, sep, value = item.partition("=")
        if not sep:
            raise SignatureError("malformed_header", f"parameter {index + 1} has no '='")
        if name not in _HMAC_PARAMETERS:
            raise SignatureError("unknown_parameter", "the header has an unknown parameter")
        if name in found:
            raise SignatureError("repeated_parameter", f"{name} is given more than once")
        if _PARAMETER_VALUE.fullmatch(value) is None:
            raise SignatureError("malformed_header", f"{name} is empty or has invalid characters")
        found[name] = value
    return found


def parse_hmac_authorization(header: str | None) -> HmacAuthorization:
    """Strict on purpose: a lenient parser is where two implementations start to disagree."""
    if not header:
        raise SignatureError("missing_header", "no Authorization header")
    if len(header) > _MAX_AUTHORIZATION_LENGTH:
        raise SignatureError("malformed_header", "the Authorization header is too long")
    scheme, sep, params = header.partition(" ")
    # Auth schemes are case-insensitive (RFC 9110 §11.1); parameter names are ours and exact.
    if not sep or scheme.upper() != HMAC_SCHEME:
        raise SignatureError("unsupported_scheme", f"the scheme is not {HMAC_SCHEME}")
    found = _split_parameters(params.lstrip(" "))
    for name in _HMAC_PARAMETERS:
        if name not in found:
            raise SignatureError("missing_parameter", f"{name} is missing")
    return HmacAuthorization(
        key_id=found["KeyId"],
        signature=found["Signature"],
        timestamp=_parse_timestamp(found["Timestamp"]),
    )


def hmac_string_to_sign(method: str, path: str, timestamp: int, body: bytes) -> bytes:
    """Method, path with query, and body hash are all bound, so no part can be swapped on replay."""
    body_hash = hashlib.sha256(body).hexdigest()
    return f"{method}\n{path}\n{timestamp}\n{body_hash}".encode()


def _hmac_digest(secret: str, method: str, path: str, timestamp: int, body: bytes) -> bytes:
    message = hmac_string_to_sign(method, path, timestamp, body)
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()


def hmac_signature(secret: str, method: str, path: str, timestamp: int, body: bytes) -> str:
    return base64.b64encode(_hmac_digest(secret, method, path, timestamp, body)).decode("ascii")


def hmac_authorization_header(
    key_id: str, secret: str, method: str, path: str, timestamp: int, body: bytes
) -> str:
    """The header a client sends; refuses a key id our own parser would reject."""
    if _PARAMETER_VALUE.fullmatch(key_id) is None:
        raise ValueError("a key id must be visible ASCII without commas")
    signature = hmac_signature(secret, method, path, timestamp, body)
    return f"{HMAC_SCHEME} KeyId={key_id}, Signature={signature}, Timestamp={timestamp}"


def verify_hmac(
    auth: HmacAuthorization, secret: str, method: str, path: str, body: bytes, now: datetime
) -> None:
    """Timestamp first: it is cheap and tells a stale replay apart from a forgery in the logs."""
    check_timestamp(auth.timestamp, now)
    expected = _hmac_digest(secret, method, path, auth.timestamp, body)
    presented = _b64decode_strict(auth.signature)
    if presented is None or not hmac.compare_digest(expected, presented):
        raise SignatureError("signature_mismatch", "the signature does not match")


# --- Standard Webhooks -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StandardHeaders:
    """`signatures` holds the base64 part of each `v1` entry; other versions are dropped."""

    msg_id: str
    timestamp: int
    signatures: tuple[str, ...]


def _standard_header_values(headers: Mapping[str, str]) -> dict[str, str]:
    """Case-insensitive lookup that notices duplicates a case-sensitive mapping would hide."""
    found: dict[str, str] = {}
    for name, value in headers.items():
        lowered = name.lower()
        if lowered not in _STANDARD_HEADERS:
            continue
        if lowered in found:
            raise SignatureError("repeated_header", f"{lowered} is given more than once")
        found[lowered] = value
    for name in _STANDARD_HEADERS:
        if not found.get(name):
            raise SignatureError("missing_header", f"{name} is missing")
    return found


def _v1_signatures(header: str) -> tuple[str, ...]:
    """Unknown versions are skipped (the spec lets senders add e.g. v1a next to v1)."""
    found: list[str] = []
    for entry in header.split():
        version, sep, signature = entry.partition(",")
        if version == "v1" and sep and signature:
            found.append(signature)
    return tuple(found)


def parse_standard_headers(headers: Mapping[str, str]) -> StandardHeaders:
    values = _standard_header_values(headers)
    msg_id = values[_HEADER_ID]
    if len(msg_id) > MAX_MSG_ID_LENGTH:
        raise SignatureError("malformed_header", f"{_HEADER_ID} is too long")
    return StandardHeaders(
        msg_id=msg_id,
        timestamp=_parse_timestamp(values[_HEADER_TIMESTAMP]),
        signatures=_v1_signatures(values[_HEADER_SIGNATURE]),
    )


def is_whsec(secret: str) -> bool:
    """Whether a value is a usable Standard Webhooks secret (`whsec_` + base64)."""
    try:
        _whsec_key(secret)
    except SignatureError:
        return False
    return True


def _whsec_key(secret: str) -> bytes:
    """Decode strictly: the library would silently drop bad characters and sign with a different key."""
    if not secret.startswith(WHSEC_PREFIX):
        raise SignatureError("malformed_secret", f"a webhook secret starts with {WHSEC_PREFIX}")
    encoded = secret[len(WHSEC_PREFIX) :]
    key = _b64decode_strict(encoded + "=" * (-len(encoded) % 4))
    if not key:
        raise SignatureError("malformed_secret", "a webhook secret is non-empty base64")
    return key


def _utf8(body: bytes) -> str:
    """The reference library signs text; a body that is not UTF-8 cannot have been signed by it."""
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise SignatureError("malformed_body", "the body is not UTF-8") from None


def _library_sign(key: bytes, msg_id: str, timestamp: int, data: str) -> str:
    """Let the reference library compute `v1,<base64>`, so our bytes are exactly what customers check."""
    try:
        at = datetime.fromtimestamp(timestamp, UTC)
        return Webhook(key).sign(msg_id=msg_id, timestamp=at, data=data)
    # The library documents no exception contract; whatever it raises is still our 401.
    except Exception as exc:
        raise SignatureError("signing_failed", "the signature could not be computed") from exc


def standard_signature(msg_id: str, secret: str, timestamp: int, body: bytes) -> str:
    return _library_sign(_whsec_key(secret), msg_id, timestamp, _utf8(body))


def verify_standard(
    parsed: StandardHeaders, secrets: Sequence[str], body: bytes, now: datetime
) -> int:
    """Index of the first secret that matched, so the caller knows whether a rotation is done.

    Every secret is decoded before any comparison: a broken candidate is a
    configuration error to surface, not something a lucky match should hide.
    """
    check_timestamp(parsed.timestamp, now)
    data = _utf8(body)
    keys = [_whsec_key(secret) for secret in secrets]
    if not keys:
        raise SignatureError("unknown_key", "no secret to verify with")
    presented = [sig for sig in map(_b64decode_strict, parsed.signatures) if sig is not None]
    for index, key in enumerate(keys):
        expected_b64 = _library_sign(key, parsed.msg_id, parsed.timestamp, data).partition(",")[2]
        expected = base64.b64decode(expected_b64)
        if any(hmac.compare_digest(expected, sig) for sig in presented):
            return index
    raise SignatureError("signature_mismatch", "no signature matches")


def standard_webhook_headers(
    msg_id: str, secrets: Sequence[str], body: bytes, at: datetime
) -> dict[str, str]:
    """Sign with every secret, so during a rotation receivers on either secret accept it."""
    if not secrets:
        raise ValueError("at least one secret is needed to sign")
    if not msg_id or len(msg_id) > MAX_MSG_ID_LENGTH:
        raise ValueError(f"a message id is 1..{MAX_MSG_ID_LENGTH} characters")
    timestamp = _unix_seconds(at)
    signatures = [standard_signature(msg_id, secret, timestamp, body) for secret in secrets]
    return {
        _HEADER_ID: msg_id,
        _HEADER_TIMESTAMP: str(timestamp),
        _HEADER_SIGNATURE: " ".join(signatures),
    }


def generate_whsec(nbytes: int = 32) -> str:
    """The spec's 24..64 bytes: shorter is guessable, longer breaks some receivers."""
    if not WHSEC_MIN_BYTES <= nbytes <= WHSEC_MAX_BYTES:
        raise ValueError(f"a webhook secret has {WHSEC_MIN_BYTES}..{WHSEC_MAX_BYTES} bytes")
    return WHSEC_PREFIX + base64.b64encode(token_bytes(nbytes)).decode("ascii")


def generate_hmac_secret() -> str:
    """URL-safe and unpadded so it survives env files, shells and copy-paste unquoted."""
    return token_urlsafe(32)
