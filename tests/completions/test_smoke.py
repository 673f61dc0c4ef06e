"""The happy path end to end: a signed completion becomes hours, credits and events."""

from __future__ import annotations

from tests.completions.conftest import Setup


async def test_a_signed_completion_is_accepted_and_credited(inbound: Setup) -> None:
    response = await inbound.send(inbound.payload(content_hours=6.25))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "accepted"
    assert body["hours_total"] == "6.25"
    assert body["credits_awarded"] == 1
    assert body["credits_total"] == 1
    credits = await inbound.credits()
    assert credits["hours_total"] == "6.25"
    assert [c["sequence"] for c in credits["credits"]] == [1]
