"""Signing in over plain HTTP (no browser): for the tests of sessions, CSRF, throttling and roles."""

from __future__ import annotations

import re
from dataclasses import dataclass

import httpx

from coursegate.db import Database
from coursegate.kit.clock import FrozenClock
from coursegate.operators.service import OperatorService

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def make_operator(
    database: Database, clock: FrozenClock, tenant: str, email: str, role: str
) -> str:
    async with database.transaction() as session:
        _, password = await OperatorService(session, clock).create(tenant, email, role)
    return password


def form_token(html: str) -> str:
    found = CSRF.search(html)
    assert found is not None, "the page has no CSRF field"
    return found.group(1)


async def post_login(
    client: httpx.AsyncClient, organisation: str, email: str, password: str
) -> httpx.Response:
    """The sign-in form as a browser sends it: read the page (and its cookie), post it back."""
    page = await client.get("/console/login")
    return await client.post(
        "/console/login",
        data={
            "organisation": organisation,
            "email": email,
            "password": password,
            "csrf_token": form_token(page.text),
        },
    )


@dataclass
class SignedIn:
    client: httpx.AsyncClient
    csrf: str

    async def post(self, path: str, data: dict[str, str] | None = None) -> httpx.Response:
        return await self.client.post(path, data={**(data or {}), "csrf_token": self.csrf})


async def signed_in(
    client: httpx.AsyncClient, database: Database, clock: FrozenClock, tenant: str, role: str
) -> SignedIn:
    email = f"{role}@{tenant}.test"
    password = await make_operator(database, clock, tenant, email, role)
    response = await post_login(client, tenant, email, password)
    assert response.status_code == 303, response.text
    overview = await client.get("/console")
    assert overview.status_code == 200
    return SignedIn(client=client, csrf=form_token(overview.text))
