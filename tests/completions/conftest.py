"""Fixtures for inbound completions: a program, a learner, a provider, and a signer."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest

from coursegate.kit.clock import FrozenClock
from coursegate.kit.signing import hmac_authorization_header, standard_webhook_headers
from tests.conftest import bearer

PATH = "/v1/inbound/acme/edovo/completions"


@dataclass
class Setup:
    client: httpx.AsyncClient
    clock: FrozenClock
    admin: dict[str, str]
    key_id: str
    secret: str
    person_id: str

    def payload(self, **overrides: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "person_id": "123456",
            "state_code": "US_CO",
            "course_id": "fin-lit-101",
            "course_name": "Financial Literacy",
            "content_hours": 4.5,
            "completed_at": "2026-06-10T10:19:00+05:00",
        }
        body.update(overrides)
        return {k: v for k, v in body.items() if v is not _DROP}

    def signed(
        self,
        body: bytes,
        *,
        path: str = PATH,
        key_id: str | None = None,
        secret: str | None = None,
        at: datetime | None = None,
        method: str = "POST",
    ) -> dict[str, str]:
        timestamp = int((at or self.clock.now()).timestamp())
        header = hmac_authorization_header(
            key_id or self.key_id, secret or self.secret, method, path, timestamp, body
        )
        return {"Authorization": header, "Content-Type": "application/json"}

    async def send(
        self,
        payload: dict[str, Any] | bytes,
        *,
        headers: dict[str, str] | None = None,
        path: str = PATH,
        **sign: Any,
    ) -> httpx.Response:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        signed = self.signed(body, path=path, **sign)
        return await self.client.post(path, content=body, headers={**signed, **(headers or {})})

    async def credits(self, person_id: str | None = None) -> dict[str, Any]:
        response = await self.client.get(
            f"/v1/people/{person_id or self.person_id}/credits",
            params={"program": "co-earned-time"},
            headers=self.admin,
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def audit(self, **params: str) -> list[dict[str, Any]]:
        response = await self.client.get("/v1/inbound/audit", params=params, headers=self.admin)
        assert response.status_code == 200, response.text
        rows: list[dict[str, Any]] = response.json()["data"]
        return rows

    async def add_person(self, value: str, namespace: str = "us_co_doc_id") -> str:
        response = await self.client.post(
            "/v1/people",
            json={"identifiers": [{"namespace": namespace, "value": value}]},
            headers=self.admin,
        )
        assert response.status_code == 201, response.text
        person: str = response.json()["id"]
        return person


_DROP = object()
DROP: Any = _DROP


async def make_setup(client: httpx.AsyncClient, clock: FrozenClock, admin_key: str) -> Setup:
    admin = bearer(admin_key)
    program = await client.post(
        "/v1/programs",
        headers=admin,
        json={
            "id": "co-earned-time",
            "name": "Colorado earned time",
            "jurisdiction": "US_CO",
            "hours_per_credit": "6",
            "identifier_namespace": "us_co_doc_id",
        },
    )
    assert program.status_code == 201, program.text
    provider = await client.post(
        "/v1/providers",
        headers=admin,
        json={
            "id": "edovo",
            "program_id": "co-earned-time",
            "scheme": "hmac-authorization",
            "keys": [{"key_id": "k1"}],
        },
    )
    assert provider.status_code == 201, provider.text
    secret = provider.json()["keys"][0]["secret"]
    setup = Setup(client, clock, admin, "k1", secret, person_id="")
    setup.person_id = await setup.add_person("123456")
    return setup


@pytest.fixture
async def inbound(client: httpx.AsyncClient, clock: FrozenClock, acme: str) -> Setup:
    return await make_setup(client, clock, acme)


def standard_headers(
    secret: str, body: bytes, at: datetime, msg_id: str | None = None
) -> dict[str, str]:
    return {
        **standard_webhook_headers(msg_id or f"msg_{uuid.uuid4().hex}", [secret], body, at),
        "Content-Type": "application/json",
    }
