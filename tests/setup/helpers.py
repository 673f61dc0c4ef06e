"""Setup shared by the setup-API tests."""

from __future__ import annotations

import httpx

from tests.conftest import bearer


async def create_program(client: httpx.AsyncClient, key: str, program_id: str = "co") -> None:
    response = await client.post(
        "/v1/programs",
        headers=bearer(key),
        json={
            "id": program_id,
            "name": "Colorado earned time",
            "jurisdiction": "US_CO",
            "hours_per_credit": "6",
            "identifier_namespace": "us_co_doc_id",
        },
    )
    assert response.status_code == 201, response.text
