"""While the database cannot be reached, every route that needs it answers 503
`DATABASE_UNAVAILABLE` with `Retry-After` (SPEC §0), logs one warning line and no
traceback; a genuine bug still answers 500.

The database here is a PostgreSQL URL on a port nobody listens on: the
connection is refused, as when the server is down.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import httpx
import pytest
import structlog
from fastapi import APIRouter, FastAPI, Request
from sqlalchemy import text

from coursegate.app import create_app
from coursegate.config import Settings
from coursegate.db import Database
from coursegate.kit.clock import FrozenClock
from coursegate.kit.errors import DatabaseUnavailable
from coursegate.kit.signing import hmac_authorization_header
from coursegate.tenancy.keys import new_key
from tests.servers import free_port

RETRY_AFTER = str(DatabaseUnavailable.RETRY_AFTER_SECONDS)
# Well formed, so that checking it needs the database.
ADMIN = {"Authorization": f"Bearer {new_key().plaintext}"}

bug_router = APIRouter()


@bug_router.get("/test-only/bad-sql")
async def bad_sql(request: Request) -> dict[str, str]:
    database: Database = request.app.state.database
    async with database.connection() as conn:
        await conn.execute(text("select * from no_such_table"))
    return {}


@pytest.fixture
async def down(tmp_path: Any, clock: FrozenClock) -> AsyncIterator[httpx.AsyncClient]:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/test"
    settings = Settings(database_url=url, var_dir=tmp_path / "var", _env_file=None)
    database = Database(url, pool_size=2)
    app: FastAPI = create_app(settings, database=database, clock=clock)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http
    finally:
        await database.dispose()


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == RETRY_AFTER
    assert response.json()["error"] == "DATABASE_UNAVAILABLE"


def assert_one_warning_per_request(logs: Sequence[Mapping[str, Any]], requests: int) -> None:
    warnings = [e for e in logs if e["event"] == "database_unavailable"]
    assert len(warnings) == requests
    assert all(e["log_level"] == "warning" and "exc_info" not in e for e in warnings)
    assert not [e for e in logs if e["log_level"] in {"error", "critical"}]


async def test_admin_routes_answer_503_with_retry_after(down: httpx.AsyncClient) -> None:
    with structlog.testing.capture_logs() as logs:
        assert_unavailable(await down.get("/v1/whoami", headers=ADMIN))
        assert_unavailable(await down.get("/v1/people", headers=ADMIN))
        created = await down.post(
            "/v1/programs",
            headers=ADMIN,
            json={"id": "p", "name": "P", "jurisdiction": "US_CO", "hours_per_credit": "6"},
        )
        assert_unavailable(created)
    assert_one_warning_per_request(logs, 3)
    # What needs no database is answered as always: no key is 401 before any query.
    assert (await down.get("/v1/whoami")).status_code == 401
    assert (await down.get("/healthz")).status_code == 200


async def test_the_inbound_fast_path_answers_503_with_retry_after(
    down: httpx.AsyncClient, clock: FrozenClock
) -> None:
    path = "/v1/inbound/acme/edovo/completions"
    body = b'{"person_id": "123456", "state_code": "US_CO", "content_hours": 4.5}'
    header = hmac_authorization_header(
        "k1", "secret", "POST", path, int(clock.now().timestamp()), body
    )
    with structlog.testing.capture_logs() as logs:
        response = await down.post(
            path,
            content=body,
            headers={"Authorization": header, "Content-Type": "application/json"},
        )
    assert_unavailable(response)
    assert_one_warning_per_request(logs, 1)
    assert logs[0]["where"] == "inbound"


async def test_console_pages_answer_a_503_page_with_retry_after(down: httpx.AsyncClient) -> None:
    down.cookies.set("cg_session", "a-session-that-cannot-be-looked-up")
    with structlog.testing.capture_logs() as logs:
        page = await down.get("/console/learners")
        fragment = await down.get("/console/learners", headers={"HX-Request": "1"})
    for response in (page, fragment):
        assert response.status_code == 503
        assert response.headers["retry-after"] == RETRY_AFTER
        assert response.headers["content-type"].startswith("text/html")
        assert "The database cannot be reached just now" in response.text
    assert "<html" in page.text
    assert "<html" not in fragment.text
    assert_one_warning_per_request(logs, 2)


async def test_readyz_is_503_and_healthz_200(down: httpx.AsyncClient) -> None:
    assert (await down.get("/readyz")).status_code == 503
    assert (await down.get("/healthz")).status_code == 200


async def test_a_genuine_bug_stays_a_500_with_its_traceback(
    settings: Settings, database: Database, clock: FrozenClock
) -> None:
    app = create_app(settings, database=database, clock=clock, extra_routers=[bug_router])
    transport = httpx.ASGITransport(app=app)
    with structlog.testing.capture_logs() as logs:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.get("/test-only/bad-sql")
    assert response.status_code == 500
    assert response.json() == {"error": "INTERNAL_ERROR"}
    assert "retry-after" not in response.headers
    errors = [e for e in logs if e["event"] == "unhandled_error"]
    assert len(errors) == 1
    assert errors[0]["exc_info"] is True
    assert not [e for e in logs if e["event"] == "database_unavailable"]
