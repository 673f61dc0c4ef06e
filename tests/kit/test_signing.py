"""Both signature schemes accept exactly what a correct client sends, and nothing else."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from coursegate.kit.signing import (
    HmacAuthorization,
    SignatureError,
    StandardHeaders,
    check_timestamp,
    generate_hmac_secret,
    generate_whsec,
    hmac_authorization_header,
    hmac_signature,
    hmac_string_to_sign,
    parse_hmac_authorization,
    parse_standard_headers,
    standard_signature,
    standard_webhook_headers,
    verify_hmac,
    verify_standard,
)

NOW = datetime(2026, 6, 10, 12, tzinfo=UTC)
TS = int(NOW.timestamp())
SECRET = "kJ3v9Yq2mXw8Rt5Lp0Zs7Nb4Hd6Fg1Ac"
BODY = b'{"enrollment_id":"e-1","hours":"1.50"}'
PATH = "/v1/programs/p1/completions"
WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
WHSEC_NEW = "whsec_" + base64.b64encode(bytes(range(32))).decode()


def reason(excinfo: pytest.ExceptionInfo[SignatureError]) -> str:
    return excinfo.value.reason


def signed_header(
    *, method: str = "POST", path: str = PATH, timestamp: int = TS, body: bytes = BODY
) -> str:
    return hmac_authorization_header("k1", SECRET, method, path, timestamp, body)


def verify_header(
    header: str,
    *,
    secret: str = SECRET,
    method: str = "POST",
    path: str = PATH,
    body: bytes = BODY,
    now: datetime = NOW,
) -> None:
    verify_hmac(parse_hmac_authorization(header), secret, method, path, body, now)


# --- HMAC-SHA256 Authorization ---------------------------------------------------------


def test_hmac_header_round_trip() -> None:
    header = signed_header()
    auth = parse_hmac_authorization(header)
    assert auth == HmacAuthorization(
        key_id="k1", signature=hmac_signature(SECRET, "POST", PATH, TS, BODY), timestamp=TS
    )
    verify_header(header)


def test_string_to_sign_is_method_path_timestamp_and_body_hash() -> None:
    assert hmac_string_to_sign("GET", "/a?b=1", 42, b"") == (
        b"GET\n/a?b=1\n42\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )


def test_hmac_signature_is_base64_hmac_sha256_of_the_string_to_sign() -> None:
    # Fixed vector, so a client in another language can check itself against ours.
    assert hmac_signature("secret", "GET", "/a?b=1", 42, b"") == (
        "fah8iNwIcaHOpk4K8ZhhQJkbZNimMeh1anrIhgmVGFk="
    )


@pytest.mark.parametrize(
    "template",
    [
        "HMAC-SHA256 KeyId=k1,Signature={sig},Timestamp={ts}",
        "HMAC-SHA256 Timestamp={ts}, KeyId=k1, Signature={sig}",
        "HMAC-SHA256 Signature={sig},  Timestamp={ts},KeyId=k1",
    ],
)
def test_parameters_in_any_order_with_or_without_spaces(template: str) -> None:
    sig = hmac_signature(SECRET, "POST", PATH, TS, BODY)
    header = template.format(sig=sig, ts=TS)
    assert parse_hmac_authorization(header) == HmacAuthorization("k1", sig, TS)
    verify_header(header)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "missing_header"),
        ("", "missing_header"),
        ("HMAC-SHA256 KeyId=k1, Signature=c2ln", "missing_parameter"),
        ("HMAC-SHA256 Signature=c2ln, Timestamp=1", "missing_parameter"),
        ("HMAC-SHA256 KeyId=k1, Signature=c2ln, Timestamp=1, Nonce=x", "unknown_parameter"),
        ("HMAC-SHA256 KeyId=k1, keyid=k2, Signature=c2ln, Timestamp=1", "unknown_parameter"),
        ("HMAC-SHA256 KeyId=k1, Signature=c2ln, Timestamp=1, KeyId=k2", "repeated_parameter"),
        ("HMAC-SHA256 KeyId=k1, Signature=c2ln, Timestamp=1, Timestamp=1", "repeated_parameter"),
        ("Bearer KeyId=k1, Signature=c2ln, Timestamp=1", "unsupported_scheme"),
        ("HMAC-SHA1 KeyId=k1, Signature=c2ln, Timestamp=1", "unsupported_scheme"),
        ("HMAC-SHA256", "unsupported_scheme"),
        ("HMAC-SHA256 KeyId=, Signature=c2ln, Timestamp=1", "malformed_header"),
        ("HMAC-SHA256 KeyId=k1, Signature=c2ln, Timestamp=", "malformed_header"),
        ("HMAC-SHA256 KeyId=k1, Signature=c2ln, Timestamp=1,", "malformed_header"),
        ("HMAC-SHA256 KeyId=k1 , Signature=c2ln, Timestamp=1", "malformed_header"),
        ("HMAC-SHA256 KeyId, Signature=c2ln, Timestamp=1", "malformed_header"),
        ("HMAC-SHA256 KeyId=k1, Signature=c2ln, Timestamp=1" + "x" * 2048, "malformed_header"),
    ],
)
def test_malformed_headers_are_rejected_with_their_reason(
    header: str | None, expected: str
) -> None:
    with pytest.raises(SignatureError) as excinfo:
        parse_hmac_authorization(header)
    assert reason(excinfo) == expected


@pytest.mark.parametrize("timestamp", ["-1", "+1", "1.0", "1e3", "0x10", "1_000", "1" * 13])
def test_timestamp_must_be_plain_digits(timestamp: str) -> None:
    with pytest.raises(SignatureError) as excinfo:
        parse_hmac_authorization(f"HMAC-SHA256 KeyId=k1, Signature=c2ln, Timestamp={timestamp}")
    assert reason(excinfo) == "malformed_timestamp"


def test_twelve_digit_timestamp_parses_and_is_then_skewed() -> None:
    auth = parse_hmac_authorization("HMAC-SHA256 KeyId=k1, Signature=c2ln, Timestamp=999999999999")
    assert auth.timestamp == 999_999_999_999
    with pytest.raises(SignatureError) as excinfo:
        verify_hmac(auth, SECRET, "POST", PATH, BODY, NOW)
    assert reason(excinfo) == "timestamp_skew"


@pytest.mark.parametrize("offset", [-300, 300])
def test_skew_of_exactly_300_seconds_is_accepted(offset: int) -> None:
    verify_header(signed_header(timestamp=TS + offset))


@pytest.mark.parametrize("offset", [-301, 301])
def test_skew_of_301_seconds_either_way_is_rejected(offset: int) -> None:
    with pytest.raises(SignatureError) as excinfo:
        verify_header(signed_header(timestamp=TS + offset))
    assert reason(excinfo) == "timestamp_skew"


def test_timestamp_is_checked_before_the_signature() -> None:
    header = hmac_authorization_header("k1", "wrong", "POST", PATH, TS - 301, BODY)
    with pytest.raises(SignatureError) as excinfo:
        verify_header(header)
    assert reason(excinfo) == "timestamp_skew"


def test_check_timestamp_compares_instants_not_wall_clocks() -> None:
    plus2 = NOW.astimezone(timezone(timedelta(hours=2)))
    check_timestamp(TS + 300, plus2)
    with pytest.raises(SignatureError):
        check_timestamp(TS + 301, plus2)
    with pytest.raises(ValueError, match="timezone-aware"):
        check_timestamp(TS, NOW.replace(tzinfo=None))


@pytest.mark.parametrize(
    ("secret", "method", "path", "body"),
    [
        pytest.param(SECRET, "POST", PATH, BODY.replace(b"1.50", b"9.50"), id="tampered-body"),
        pytest.param(SECRET, "POST", "/v1/programs/p2/completions", BODY, id="other-path"),
        pytest.param(SECRET, "POST", PATH + "?dry_run=1", BODY, id="path-gained-query"),
        pytest.param(SECRET, "PUT", PATH, BODY, id="other-method"),
        pytest.param("another-secret", "POST", PATH, BODY, id="wrong-secret"),
    ],
)
def test_any_change_to_a_signed_part_is_a_mismatch(
    secret: str, method: str, path: str, body: bytes
) -> None:
    header = signed_header()
    verify_header(header)  # the unchanged request passes, so only the change can fail it
    with pytest.raises(SignatureError) as excinfo:
        verify_header(header, secret=secret, method=method, path=path, body=body)
    assert reason(excinfo) == "signature_mismatch"


def test_query_is_part_of_the_signed_path() -> None:
    header = signed_header(path=PATH + "?dry_run=1")
    verify_header(header, path=PATH + "?dry_run=1")
    with pytest.raises(SignatureError) as excinfo:
        verify_header(header, path=PATH)
    assert reason(excinfo) == "signature_mismatch"


@pytest.mark.parametrize("signature", ["not*base64", "c2ln", "AAAA", "=" * 4, "ñ"])
def test_garbage_signature_is_a_mismatch(signature: str) -> None:
    auth = HmacAuthorization(key_id="k1", signature=signature, timestamp=TS)
    with pytest.raises(SignatureError) as excinfo:
        verify_hmac(auth, SECRET, "POST", PATH, BODY, NOW)
    assert reason(excinfo) == "signature_mismatch"


def test_signature_error_message_does_not_carry_the_signature() -> None:
    sig = hmac_signature(SECRET, "POST", PATH, TS, BODY)
    with pytest.raises(SignatureError) as excinfo:
        verify_header(signed_header(), secret="wrong")
    assert sig not in str(excinfo.value)
    assert SECRET not in str(excinfo.value)


def test_header_builder_refuses_a_key_id_the_parser_would_reject() -> None:
    with pytest.raises(ValueError, match="key id"):
        hmac_authorization_header("k1, Nonce=x", SECRET, "POST", PATH, TS, BODY)


def test_generated_hmac_secret_is_32_random_bytes_url_safe_unpadded() -> None:
    first, second = generate_hmac_secret(), generate_hmac_secret()
    assert first != second
    assert len(first) == 43
    assert "=" not in first
    assert len(base64.urlsafe_b64decode(first + "=")) == 32


# --- Standard Webhooks -----------------------------------------------------------------


def library_headers(
    secret: str, *, msg_id: str = "msg_1", at: datetime = NOW, body: bytes = BODY
) -> dict[str, str]:
    """Headers exactly as a customer using the reference library would send them."""
    signature = Webhook(secret).sign(msg_id, at, body.decode())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
    }


def test_verifies_a_request_signed_by_the_reference_library() -> None:
    parsed = parse_standard_headers(library_headers(WHSEC))
    assert parsed.msg_id == "msg_1"
    assert parsed.timestamp == TS
    assert verify_standard(parsed, [WHSEC], BODY, NOW) == 0


def test_our_signature_equals_the_reference_library() -> None:
    expected = Webhook(WHSEC).sign("msg_1", NOW, BODY.decode())
    assert standard_signature("msg_1", WHSEC, TS, BODY) == expected


def test_header_names_are_case_insensitive() -> None:
    headers = {name.title(): value for name, value in library_headers(WHSEC).items()}
    assert verify_standard(parse_standard_headers(headers), [WHSEC], BODY, NOW) == 0


def test_only_the_second_of_several_signatures_matches() -> None:
    good = library_headers(WHSEC)["webhook-signature"]
    wrong = Webhook(WHSEC_NEW).sign("msg_1", NOW, BODY.decode())
    headers = library_headers(WHSEC) | {
        "webhook-signature": f"{wrong} v1a,{good[3:]} v2,xyz garbage v1,*** {good}"
    }
    parsed = parse_standard_headers(headers)
    assert parsed.signatures == (wrong[3:], "***", good[3:])
    assert verify_standard(parsed, [WHSEC], BODY, NOW) == 0


def test_a_matching_signature_under_another_version_does_not_count() -> None:
    good = library_headers(WHSEC)["webhook-signature"]
    headers = library_headers(WHSEC) | {"webhook-signature": f"v1a,{good[3:]}"}
    parsed = parse_standard_headers(headers)
    assert parsed.signatures == ()
    with pytest.raises(SignatureError) as excinfo:
        verify_standard(parsed, [WHSEC], BODY, NOW)
    assert reason(excinfo) == "signature_mismatch"


@pytest.mark.parametrize(
    ("signed_with", "index"),
    [(WHSEC, 0), (WHSEC_NEW, 1)],
)
def test_rotation_returns_the_index_of_the_secret_that_matched(
    signed_with: str, index: int
) -> None:
    parsed = parse_standard_headers(library_headers(signed_with))
    assert verify_standard(parsed, [WHSEC, WHSEC_NEW], BODY, NOW) == index


def test_no_matching_secret_is_a_mismatch() -> None:
    parsed = parse_standard_headers(library_headers(WHSEC_NEW))
    with pytest.raises(SignatureError) as excinfo:
        verify_standard(parsed, [WHSEC], BODY, NOW)
    assert reason(excinfo) == "signature_mismatch"


def test_tampered_body_is_a_mismatch() -> None:
    parsed = parse_standard_headers(library_headers(WHSEC))
    with pytest.raises(SignatureError) as excinfo:
        verify_standard(parsed, [WHSEC], BODY + b" ", NOW)
    assert reason(excinfo) == "signature_mismatch"


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_or_empty_header_is_rejected(missing: str) -> None:
    headers = library_headers(WHSEC)
    for variant in ({k: v for k, v in headers.items() if k != missing}, headers | {missing: ""}):
        with pytest.raises(SignatureError) as excinfo:
            parse_standard_headers(variant)
        assert reason(excinfo) == "missing_header"


def test_the_same_header_twice_in_different_case_is_rejected() -> None:
    headers = library_headers(WHSEC) | {"Webhook-Id": "msg_2"}
    with pytest.raises(SignatureError) as excinfo:
        parse_standard_headers(headers)
    assert reason(excinfo) == "repeated_header"


@pytest.mark.parametrize(
    "timestamp", ["1781092800.0", "-1", " 1781092800", "1e9", "abc", "١٧٨١٠٩٢٨٠٠"]
)
def test_non_integer_webhook_timestamp_is_rejected(timestamp: str) -> None:
    headers = library_headers(WHSEC) | {"webhook-timestamp": timestamp}
    with pytest.raises(SignatureError) as excinfo:
        parse_standard_headers(headers)
    assert reason(excinfo) == "malformed_timestamp"


def test_msg_id_longer_than_255_is_rejected() -> None:
    assert parse_standard_headers(library_headers(WHSEC, msg_id="m" * 255)).msg_id == "m" * 255
    with pytest.raises(SignatureError) as excinfo:
        parse_standard_headers(library_headers(WHSEC, msg_id="m" * 256))
    assert reason(excinfo) == "malformed_header"


def test_non_utf8_body_is_a_signature_error() -> None:
    parsed = StandardHeaders(msg_id="msg_1", timestamp=TS, signatures=("AAAA",))
    with pytest.raises(SignatureError) as excinfo:
        verify_standard(parsed, [WHSEC], b"\xff\xfe", NOW)
    assert reason(excinfo) == "malformed_body"


@pytest.mark.parametrize("offset", [-301, 301])
def test_webhook_skew_of_301_seconds_is_rejected(offset: int) -> None:
    parsed = parse_standard_headers(library_headers(WHSEC, at=NOW + timedelta(seconds=offset)))
    with pytest.raises(SignatureError) as excinfo:
        verify_standard(parsed, [WHSEC], BODY, NOW)
    assert reason(excinfo) == "timestamp_skew"


@pytest.mark.parametrize(
    "secret",
    ["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_", "whsec_!!!!", "whsec_abcde", "whsec_ñ"],
)
def test_malformed_secret_is_a_signature_error(secret: str) -> None:
    parsed = parse_standard_headers(library_headers(WHSEC))
    with pytest.raises(SignatureError) as excinfo:
        verify_standard(parsed, [WHSEC, secret], BODY, NOW)
    assert reason(excinfo) == "malformed_secret"


def test_malformed_secret_error_does_not_quote_the_secret() -> None:
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa!w"
    with pytest.raises(SignatureError) as excinfo:
        standard_signature("msg_1", secret, TS, BODY)
    assert "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa" not in str(excinfo.value)
    assert excinfo.value.__cause__ is None


def test_unpadded_secret_is_accepted_like_the_library_does() -> None:
    unpadded = WHSEC_NEW.rstrip("=")
    assert unpadded != WHSEC_NEW
    parsed = parse_standard_headers(library_headers(WHSEC_NEW))
    assert verify_standard(parsed, [unpadded], BODY, NOW) == 0


def test_no_secrets_is_an_unknown_key() -> None:
    parsed = parse_standard_headers(library_headers(WHSEC))
    with pytest.raises(SignatureError) as excinfo:
        verify_standard(parsed, [], BODY, NOW)
    assert reason(excinfo) == "unknown_key"


def test_headers_signed_with_two_secrets_pass_the_library_verify_with_each() -> None:
    # The library's verify reads the real clock, so this one test signs at the real now.
    body = json.dumps({"event": "enrollment.created", "id": "e-1"}).encode()
    headers = standard_webhook_headers("msg_rot", [WHSEC, WHSEC_NEW], body, datetime.now(UTC))
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (WHSEC, WHSEC_NEW):
        assert Webhook(secret).verify(body, headers) == {"event": "enrollment.created", "id": "e-1"}
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook(generate_whsec()).verify(body, headers)


def test_outbound_headers_verify_with_our_own_verifier() -> None:
    headers = standard_webhook_headers("msg_1", [WHSEC_NEW], BODY, NOW)
    assert headers["webhook-timestamp"] == str(TS)
    assert verify_standard(parse_standard_headers(headers), [WHSEC_NEW], BODY, NOW) == 0


def test_outbound_headers_need_a_secret_and_an_aware_instant() -> None:
    with pytest.raises(ValueError, match="secret"):
        standard_webhook_headers("msg_1", [], BODY, NOW)
    with pytest.raises(ValueError, match="timezone-aware"):
        standard_webhook_headers("msg_1", [WHSEC], BODY, NOW.replace(tzinfo=None))


@pytest.mark.parametrize("nbytes", [24, 32, 64])
def test_generate_whsec_within_bounds(nbytes: int) -> None:
    secret = generate_whsec(nbytes)
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == nbytes
    assert secret != generate_whsec(nbytes)


@pytest.mark.parametrize("nbytes", [0, 23, 65])
def test_generate_whsec_out_of_bounds(nbytes: int) -> None:
    with pytest.raises(ValueError, match=r"24\.\.64"):
        generate_whsec(nbytes)
