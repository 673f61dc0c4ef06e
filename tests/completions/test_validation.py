"""Every constraint code, on the field it belongs to and no other (SPEC §2)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.completions.conftest import DROP, Setup

CASES: list[tuple[dict[str, Any], str, str]] = [
    ({"person_id": DROP}, "person_id", "required"),
    ({"person_id": 123456}, "person_id", "invalid_type"),
    ({"person_id": "x" * 129}, "person_id", "too_long"),
    ({"person_id": "  "}, "person_id", "invalid"),
    ({"state_code": DROP}, "state_code", "required"),
    ({"state_code": "US_CA"}, "state_code", "invalid_state_code"),
    ({"state_code": ["US_CO"]}, "state_code", "invalid_type"),
    ({"course_id": DROP}, "course_id", "required"),
    ({"course_id": "c" * 129}, "course_id", "too_long"),
    ({"course_name": "n" * 513}, "course_name", "too_long"),
    ({"course_name": 5}, "course_name", "invalid_type"),
    ({"content_hours": DROP}, "content_hours", "required"),
    ({"content_hours": "4.5"}, "content_hours", "invalid_type"),
    ({"content_hours": True}, "content_hours", "invalid_type"),
    ({"content_hours": None}, "content_hours", "invalid_type"),
    ({"content_hours": 0}, "content_hours", "must_be_positive"),
    ({"content_hours": -2.5}, "content_hours", "must_be_positive"),
    ({"content_hours": 1.005}, "content_hours", "too_many_decimal_places"),
    ({"content_hours": 1000.01}, "content_hours", "out_of_range"),
    ({"completed_at": DROP}, "completed_at", "required"),
    ({"completed_at": "2026-06-10T10:19:00"}, "completed_at", "timezone_required"),
    ({"completed_at": "yesterday"}, "completed_at", "invalid"),
    ({"completed_at": "2026-06-10"}, "completed_at", "invalid"),
    ({"completed_at": 1781000000}, "completed_at", "invalid_type"),
    ({"completed_at": "2026-06-10T12:10:00Z"}, "completed_at", "out_of_range"),
]


@pytest.mark.parametrize(("overrides", "field", "constraint"), CASES)
async def test_constraint_on_its_field(
    inbound: Setup, overrides: dict[str, Any], field: str, constraint: str
) -> None:
    response = await inbound.send(inbound.payload(**overrides))
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == "VALIDATION_ERROR"
    assert [(d["field"], d["constraint"]) for d in body["details"]] == [(field, constraint)]


async def test_several_problems_are_reported_together(inbound: Setup) -> None:
    response = await inbound.send(inbound.payload(content_hours=0, state_code="XX", course_id=DROP))
    pairs = {(d["field"], d["constraint"]) for d in response.json()["details"]}
    assert pairs == {
        ("content_hours", "must_be_positive"),
        ("state_code", "invalid_state_code"),
        ("course_id", "required"),
    }


async def test_unknown_fields_are_ignored_and_hours_stay_exact(inbound: Setup) -> None:
    body = (
        json.dumps(inbound.payload(extra="ignored"))
        .encode()
        .replace(b'"content_hours": 4.5', b'"content_hours": 0.10000000000000000000')
    )
    response = await inbound.send(body)
    assert response.status_code == 201, response.text
    assert response.json()["hours_total"] == "0.10"


async def test_integer_and_maximum_hours(inbound: Setup) -> None:
    assert (await inbound.send(inbound.payload(content_hours=1000))).json()[
        "hours_total"
    ] == "1000.00"
    small = await inbound.send(inbound.payload(course_id="c2", content_hours=0.01))
    assert small.json()["hours_total"] == "1000.01"
