"""PostgreSQL, over a real HTTP server: concurrent completions never credit a threshold twice."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from coursegate.config import Settings
from coursegate.db import Database
from coursegate.kit.clock import SystemClock
from coursegate.kit.secrets import SecretBox, default_stores
from coursegate.kit.signing import hmac_authorization_header
from coursegate.models import Credit, Event, Program
from coursegate.people.service import PeopleService
from coursegate.programs.repository import ProgramRepository
from coursegate.providers.service import NewKey, ProviderService
from coursegate.tenancy.service import TenancyService
from tests import servers

PEOPLE = 20
PER_PERSON_HOURS = ["1.11", "2.22", "3.33", "4.44", "5.55", "6.66", "7.77", "8.88"]  # 39.96 h
RESENT = 2  # each person also resends two of those, concurrently with the rest


async def _setup(database: Database, settings: Settings) -> str:
    clock = SystemClock()
    async with database.transaction() as session:
        await TenancyService(session, clock).create_tenant("acme")
        await ProgramRepository(session).add(
            Program(
                tenant_id="acme",
                id="prog",
                name="Program",
                jurisdiction="US_CO",
                hours_per_credit=Decimal("6"),
                identifier_namespace="doc",
                created_at=clock.now(),
            )
        )
        service = ProviderService(
            session, clock, SecretBox(settings.master_key()), default_stores()
        )
        _, [key] = await service.create(
            "acme", "tablet", "prog", "hmac-authorization", [NewKey("k1", None)]
        )
        people = PeopleService(session, clock)
        for i in range(PEOPLE):
            await people.create("acme", [("doc", f"person-{i}")])
    assert key.secret is not None
    return key.secret


@pytest.mark.postgres_only
async def test_200_concurrent_completions_for_20_people(
    settings: Settings, database: Database, tmp_path: Path
) -> None:
    secret = await _setup(database, settings)
    env = {
        "COURSEGATE_DATABASE_URL": settings.resolved_database_url,
        "COURSEGATE_VAR_DIR": str(settings.var_dir),
        "COURSEGATE_ACCESS_LOG": "false",
        "COURSEGATE_LOG_LEVEL": "WARNING",
    }
    path = "/v1/inbound/acme/tablet/completions"
    bodies = [_body(i, c, hours) for i in range(PEOPLE) for c, hours in enumerate(PER_PERSON_HOURS)]
    bodies += [_body(i, c, PER_PERSON_HOURS[c]) for i in range(PEOPLE) for c in range(RESENT)]
    assert len(bodies) == 200

    async def send(client: httpx.AsyncClient, body: bytes) -> int:
        ts = int(datetime.now(UTC).timestamp())
        auth = hmac_authorization_header("k1", secret, "POST", path, ts, body)
        headers = {"Authorization": auth, "Content-Type": "application/json"}
        return (await client.post(path, content=body, headers=headers)).status_code

    server = await asyncio.to_thread(servers.start, ["api"], env, tmp_path / "api.log")
    try:
        await asyncio.to_thread(servers.wait_ready, server)
        limits = httpx.Limits(max_connections=200)
        async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=60) as client:
            statuses = await asyncio.gather(*(send(client, b) for b in bodies))
    finally:
        await asyncio.to_thread(servers.stop, server)

    assert statuses.count(201) == PEOPLE * len(PER_PERSON_HOURS), (
        tmp_path / "api.log"
    ).read_text()[-2000:]
    assert statuses.count(200) == PEOPLE * RESENT
    expected_credits = int(sum(Decimal(h) for h in PER_PERSON_HOURS) // 6)  # 39.96 h → 6
    async with database.transaction() as session:
        per_person = (
            await session.execute(
                select(Credit.person_id, func.count(), func.max(Credit.sequence)).group_by(
                    Credit.person_id
                )
            )
        ).all()
        earned = await session.scalar(
            select(func.count()).select_from(Event).where(Event.type == "credit.earned")
        )
    assert len(per_person) == PEOPLE
    assert all(
        count == expected_credits and top == expected_credits for _, count, top in per_person
    )
    assert earned == PEOPLE * expected_credits


def _body(person: int, course: int, hours: str) -> bytes:
    return (
        json.dumps(
            {
                "person_id": f"person-{person}",
                "state_code": "US_CO",
                "course_id": f"course-{course}",
                "completed_at": "2026-06-10T10:00:00Z",
                "content_hours": "HOURS",
            }
        )
        .replace('"HOURS"', hours)
        .encode()
    )
