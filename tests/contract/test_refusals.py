"""Server behaviour the contract run exposed, kept fixed on both databases."""

from __future__ import annotations

import httpx

from tests.conftest import bearer


async def test_text_holding_nul_is_a_400_and_stores_nothing(
    client: httpx.AsyncClient, acme: str
) -> None:
    """PostgreSQL cannot store U+0000 in text: it was a 500 there, and kept on SQLite."""
    body = {"identifiers": [{"namespace": "doc", "value": "12\u00003"}], "name": "A\u0000"}
    response = await client.post("/v1/people", headers=bearer(acme), json=body)
    assert response.status_code == 400
    assert response.json()["error"] == "VALIDATION_ERROR"
    assert {d["constraint"] for d in response.json()["details"]} == {"invalid"}
    listed = await client.get("/v1/people", headers=bearer(acme))
    assert listed.json()["data"] == []


async def test_a_body_the_framework_cannot_read_is_invalid_json(
    client: httpx.AsyncClient, acme: str
) -> None:
    response = await client.post(
        "/v1/people",
        headers={**bearer(acme), "Content-Type": "application/json"},
        content=b"\xff\xfe{not json",
    )
    assert response.status_code == 400
    assert response.json()["error"] == "INVALID_JSON"
