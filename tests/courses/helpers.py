"""Setup shared by the course and seat tests."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import bearer


def course_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "fin-lit-101",
        "name": "Financial Literacy",
        "start_date": "2026-07-01",
        "last_drop_date": "2026-07-15",
        "end_date": "2026-09-30",
        "access_period_days": 90,
    }
    body.update(overrides)
    return body


async def create_course(client: httpx.AsyncClient, key: str, **overrides: Any) -> dict[str, Any]:
    response = await client.post("/v1/courses", headers=bearer(key), json=course_body(**overrides))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def create_provider(
    client: httpx.AsyncClient, key: str, provider_id: str, program_id: str = "co"
) -> None:
    response = await client.post(
        "/v1/providers",
        headers=bearer(key),
        json={
            "id": provider_id,
            "program_id": program_id,
            "scheme": "hmac-authorization",
            "keys": [{"key_id": "k1"}],
        },
    )
    assert response.status_code == 201, response.text


def details_of(response: httpx.Response) -> list[tuple[str, str]]:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == "VALIDATION_ERROR"
    return [(d["field"], d["constraint"]) for d in body["details"]]
