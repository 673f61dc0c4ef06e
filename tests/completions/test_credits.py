"""The earned-credit ledger comes out exact, once, every time."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from coursegate.credits.ledger import credits_for, crossing
from coursegate.db import Database
from coursegate.models import Event
from tests.completions.conftest import Setup

EXACTNESS_HOURS = ["13.11", "13.59", "9.71", "16.24", "1.52", "5.83"]


async def test_hours_that_floats_get_wrong_make_exactly_ten_credits(
    inbound: Setup, database: Database
) -> None:
    assert sum(float(h) for h in EXACTNESS_HOURS) < 60  # 59.999…: the bug this ledger avoids
    last = None
    for i, hours in enumerate(EXACTNESS_HOURS):
        body = json.dumps(inbound.payload(course_id=f"course-{i}"))
        raw = body.replace('"content_hours": 4.5', f'"content_hours": {hours}').encode()
        last = await inbound.send(raw)
        assert last.status_code == 201, last.text
    assert last is not None
    assert last.json()["hours_total"] == "60.00"
    assert last.json()["credits_total"] == 10
    credits = await inbound.credits()
    assert credits["hours_total"] == "60.00"
    assert credits["credits_total"] == 10
    assert [c["sequence"] for c in credits["credits"]] == list(range(1, 11))
    async with database.transaction() as session:
        earned = (await session.scalars(select(Event).where(Event.type == "credit.earned"))).all()
    assert sorted(e.data["sequence"] for e in earned) == list(range(1, 11))


async def test_pooling_crosses_several_thresholds_and_carries_the_remainder(inbound: Setup) -> None:
    first = (await inbound.send(inbound.payload(course_id="a", content_hours=5.99))).json()
    assert (first["credits_awarded"], first["credits_total"]) == (0, 0)
    second = (await inbound.send(inbound.payload(course_id="b", content_hours=12.02))).json()
    assert (second["hours_total"], second["credits_awarded"], second["credits_total"]) == (
        "18.01",
        3,
        3,
    )
    third = (await inbound.send(inbound.payload(course_id="c", content_hours=5.99))).json()
    assert (third["hours_total"], third["credits_awarded"], third["credits_total"]) == (
        "24.00",
        1,
        4,
    )


async def test_programs_pool_separately(inbound: Setup) -> None:
    other = await inbound.client.post(
        "/v1/programs",
        headers=inbound.admin,
        json={
            "id": "other",
            "name": "Other",
            "jurisdiction": "US_CO",
            "hours_per_credit": "2.5",
            "identifier_namespace": "us_co_doc_id",
        },
    )
    assert other.status_code == 201
    provider = await inbound.client.post(
        "/v1/providers",
        headers=inbound.admin,
        json={
            "id": "p2",
            "program_id": "other",
            "scheme": "hmac-authorization",
            "keys": [{"key_id": "a"}],
        },
    )
    secret = provider.json()["keys"][0]["secret"]
    await inbound.send(inbound.payload(content_hours=5))
    path = "/v1/inbound/acme/p2/completions"
    response = await inbound.send(
        inbound.payload(content_hours=5), path=path, key_id="a", secret=secret
    )
    assert response.json()["credits_total"] == 2  # 5 / 2.5, not pooled with the 5 hours elsewhere
    assert (await inbound.credits())["credits_total"] == 0


def test_ledger_arithmetic() -> None:
    assert credits_for(Decimal("59.99"), Decimal("6")) == 9
    assert credits_for(Decimal("60.00"), Decimal("6")) == 10
    assert credits_for(Decimal("7.50"), Decimal("2.5")) == 3
    assert list(crossing(Decimal("18.01"), Decimal("12.02"), Decimal("6")).sequences) == [1, 2, 3]
    assert list(crossing(Decimal("5.99"), Decimal("5.99"), Decimal("6")).sequences) == []


@dataclass(frozen=True)
class Report:
    course: int
    hundredths: int
    minute: int


reports = st.lists(
    st.builds(
        Report,
        course=st.integers(0, 4),
        hundredths=st.integers(1, 1500),
        minute=st.integers(0, 2),
    ),
    min_size=1,
    max_size=12,
)


async def test_property_credits_match_distinct_course_hours(inbound: Setup) -> None:
    """For any sequence of new reports, exact replays and conflicting reports of the
    same course: credits_total == floor(distinct-course hours / 6) and the ledger has
    exactly that many entries, numbered 1..n."""
    loop = asyncio.get_running_loop()
    examples = iter(range(10_000))

    async def run(sequence: list[Report]) -> None:
        person = f"p{next(examples)}"
        person_id = await inbound.add_person(person)
        first: dict[int, tuple[int, int]] = {}
        for report in sequence:
            hours = f"{report.hundredths // 100}.{report.hundredths % 100:02d}"
            raw = (
                f'{{"person_id": "{person}", "state_code": "US_CO", "course_id": "c{report.course}", '
                f'"content_hours": {hours}, "completed_at": "2026-06-10T10:0{report.minute}:00Z"}}'
            ).encode()
            response = await inbound.send(raw)
            content = (report.hundredths, report.minute)
            if report.course not in first:
                first[report.course] = content
                assert response.status_code == 201, response.text
            elif first[report.course] == content:
                assert response.status_code == 200, response.text
            else:
                assert response.status_code == 422
                assert response.json()["error"] == "ALREADY_COMPLETED"
        total = sum(h for h, _ in first.values())
        credits = await inbound.credits(person_id)
        assert credits["hours_total"] == f"{total // 100}.{total % 100:02d}"
        assert credits["credits_total"] == total // 600
        assert [c["sequence"] for c in credits["credits"]] == list(range(1, total // 600 + 1))

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    @given(reports)
    def check(sequence: list[Report]) -> None:
        asyncio.run_coroutine_threadsafe(run(sequence), loop).result(timeout=60)

    await asyncio.to_thread(check)
