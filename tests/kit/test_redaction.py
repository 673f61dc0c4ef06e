"""Secrets, tokens and personal ids never reach the log output."""

from __future__ import annotations

import io
import json
import logging

import structlog

from coursegate.kit.logs import configure_logging
from coursegate.kit.redaction import personal_digest, scrub

API_KEY = "cg_0123456789ab_s3cr3tPartOfTheKeyThatMustNeverAppear"
TOKEN = "eyJhbGciOiJIUzI1NiJ9.payload.signature-part"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_scrub_masks_by_key_name_and_by_value_shape() -> None:
    event = {
        "client_secret": "plain-words",
        "headers": {"Authorization": f"Bearer {TOKEN}", "X-Other": "fine"},
        "message": f"calling with {API_KEY} and {SECRET} at postgresql://u:hunter2@db/x",
        "person_id": "123456",
        "hmac": "HMAC-SHA256 KeyId=k1, Signature=c2lnbmF0dXJl, Timestamp=1",
    }
    out = json.dumps(scrub(event))
    for leaked in ("plain-words", TOKEN, API_KEY, SECRET, "hunter2", "123456", "c2lnbmF0dXJl"):
        assert leaked not in out
    assert "fine" in out
    assert personal_digest("123456") in out


def test_structlog_and_stdlib_records_are_redacted() -> None:
    stream = io.StringIO()
    configure_logging("DEBUG", "json", stream=stream)
    structlog.get_logger("t").info("token_fetched", access_token=TOKEN, url="https://x/y")
    structlog.get_logger("t").warning("outbound", detail=f"Authorization: Bearer {TOKEN}")
    logging.getLogger("some.library").warning("connecting with key %s", API_KEY)
    logging.getLogger("dbos").warning("secret is %s", SECRET)
    out = stream.getvalue()
    assert out.count("\n") == 4
    for line in out.splitlines():
        json.loads(line)  # every line is JSON
    for leaked in (TOKEN, API_KEY, SECRET):
        assert leaked not in out
    assert "token_fetched" in out
    assert "[REDACTED]" in out
