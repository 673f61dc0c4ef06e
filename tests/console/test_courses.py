"""Courses and Course (SPEC §9): seat counts, enrollments by status, assigning from a
Students CSV through the API's saga, Drop and Cancel — over HTTP, and once in a browser."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from playwright.async_api import Page, expect
from sqlalchemy import func, select

from coursegate import durable
from coursegate.app import create_app
from coursegate.config import Settings
from coursegate.courses.schemas import CourseCreate, SeatOrderCreate
from coursegate.courses.service import CourseService
from coursegate.db import Database
from coursegate.kit.clock import FrozenClock
from coursegate.models import Enrollment, Person, Seat
from coursegate.operators.service import OperatorService
from tests.console.conftest import LiveConsole, check_page, sign_in
from tests.console.helpers import SignedIn, signed_in
from tests.courses.helpers import course_body

COURSE = "fin-lit-101"
HEADER = "student_id,email,name\n"


@pytest.fixture
async def app(settings: Settings, database: Database, clock: FrozenClock) -> AsyncIterator[FastAPI]:
    """The application with durable execution launched, as `coursegate api` has it: an
    assignment's saga runs in the request's process, which waits for it."""
    application = create_app(settings, database=database, clock=clock)
    await durable.launch(settings, database, durable.Role.API, clock, application.state.adapters)
    try:
        yield application
    finally:
        durable.shutdown()
        application.state.enqueuer.close()


async def make_course(
    database: Database,
    clock: FrozenClock,
    tenant: str = "acme",
    course_id: str = COURSE,
    seats: int = 10,
    **overrides: Any,
) -> None:
    """An active course with seats, through the services the API's routes call."""
    async with database.transaction() as session:
        courses = CourseService(session, clock)
        await courses.create(
            tenant, CourseCreate.model_validate(course_body(id=course_id, **overrides))
        )
        await courses.activate(tenant, course_id)
        if seats:
            order = SeatOrderCreate.model_validate(
                {"quantity": seats, "order_ref": f"o-{course_id}"}
            )
            await courses.order_seats(tenant, course_id, order)


def students(*rows: str) -> bytes:
    return (HEADER + "".join(f"{row}\n" for row in rows)).encode()


def roster(count: int, start: int = 1) -> bytes:
    return students(
        *(f"s{n:04d},s{n:04d}@example.edu,Student {n}" for n in range(start, start + count))
    )


async def upload(
    who: SignedIn,
    content: bytes,
    course: str = COURSE,
    *,
    token: bool = True,
    options: dict[str, str] | None = None,
) -> httpx.Response:
    data = {**(options or {}), **({"csrf_token": who.csrf} if token else {})}
    return await who.client.post(
        f"/console/courses/{course}/enrollments",
        data=data,
        files={"students_csv": ("students.csv", content, "text/csv")},
    )


async def enrollments(database: Database, tenant: str = "acme") -> list[Enrollment]:
    async with database.transaction() as session:
        rows = await session.scalars(
            select(Enrollment).where(Enrollment.tenant_id == tenant).order_by(Enrollment.id)
        )
        return list(rows.all())


async def seat_statuses(database: Database, tenant: str = "acme") -> dict[str, int]:
    async with database.transaction() as session:
        rows = await session.execute(
            select(Seat.status, func.count()).where(Seat.tenant_id == tenant).group_by(Seat.status)
        )
        return {status: int(count) for status, count in rows.all()}


async def people_count(database: Database) -> int:
    async with database.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(Person)) or 0)


async def actions(database: Database, clock: FrozenClock) -> list[tuple[str, str, str]]:
    async with database.transaction() as session:
        found = await OperatorService(session, clock).actions("acme")
    return [(a.verb, a.object_type, a.outcome) for a in found]


def lines_of(html: str) -> list[str]:
    """The bad lines a refused upload lists, as the page says them."""
    return re.findall(r"<li>(line \d+: [^<]*)</li>", html)


# The pages


async def test_courses_lists_each_course_with_its_seat_counts(
    client: httpx.AsyncClient, database: Database, clock: FrozenClock, acme: str, globex: str
) -> None:
    await make_course(database, clock, seats=7)
    await make_course(database, clock, course_id="draft-101", seats=0, name="Draft & Co")
    await make_course(database, clock, tenant="globex", course_id="theirs", name="Not ours")
    await signed_in(client, database, clock, "acme", "viewer")
    page = await client.get("/console/courses")
    assert page.status_code == 200
    assert 'href="/console/courses/fin-lit-101"' in page.text
    assert "Draft &amp; Co" in page.text
    assert "Not ours" not in page.text
    row = page.text.split("/console/courses/fin-lit-101", 1)[1].split("</tr>", 1)[0]
    numbers = re.findall(r'<td class="num">(\d+)</td>', row)
    assert numbers == ["7", "0", "0", "0", "0", "7"]


async def test_a_course_shows_seats_and_enrollments_by_status_naming_each_student(
    client: httpx.AsyncClient, database: Database, clock: FrozenClock, acme: str
) -> None:
    await make_course(database, clock, seats=3)
    operator = await signed_in(client, database, clock, "acme", "operator")
    assert (await upload(operator, roster(2))).status_code == 200
    (first, _) = await enrollments(database)
    drop = await operator.post(f"/console/courses/{COURSE}/enrollments/{first.id}/drop")
    assert drop.status_code == 200
    page = await client.get(f"/console/courses/{COURSE}")
    assert page.status_code == 200
    text = page.text
    assert "<caption>Assigned (1)</caption>" in text
    assert "<caption>Dropped (1)</caption>" in text
    assigned = text.split("<caption>Assigned (1)</caption>", 1)[1].split("</table>", 1)[0]
    dropped = text.split("<caption>Dropped (1)</caption>", 1)[1].split("</table>", 1)[0]
    assert "Student 2" in assigned
    assert "student_id: s0002" in assigned
    assert "s0002@example.edu" in assigned
    assert "Student 1" in dropped
    assert "seat recovered" in dropped
    seats = text.split('id="seats-h"', 1)[1].split("</table>", 1)[0]
    # available, reserved, assigned, spent, rolled back, total
    assert re.findall(r'<td class="num">(\d+)</td>', seats) == ["2", "0", "1", "0", "0", "3"]


# Assigning from a file


async def test_an_operator_assigns_every_student_of_a_good_file(
    client: httpx.AsyncClient, database: Database, clock: FrozenClock, acme: str
) -> None:
    await make_course(database, clock, seats=5)
    operator = await signed_in(client, database, clock, "acme", "operator")
    content = (
        "\ufeffStudent_ID, Email ,Name\r\n"
        "s0001,ann@example.edu,Ann Lee\r\n"
        "\r\n"
        ' s0002 ,bo@example.edu,"Bo, the second"\r\n'
        ",,\r\n"
        "s0003,cy@example.edu,\r\n"
    ).encode()
    response = await upload(operator, content)
    assert response.status_code == 200, response.text
    assert "Assigned 3 students" in response.text
    made = await enrollments(database)
    assert [e.status for e in made] == ["assigned"] * 3
    assert await seat_statuses(database) == {"assigned": 3, "available": 2}
    assert "Bo, the second" in response.text
    assert "student_id: s0002" in response.text
    assert await actions(database, clock) == [("assign", "course", "ok")]
    async with database.transaction() as session:
        (action,) = await OperatorService(session, clock).actions("acme")
    assert action.object_id == COURSE
    assert action.detail == {"students": 3, "enrollments": 3}


BAD_FILES = {
    "empty": (b"", ["line 1: the file is empty: it needs the header row student_id,email,name"]),
    "header only": (HEADER.encode(), ["line 1: no student follows the header row"]),
    "bad header": (
        b"id,email,name\ns0001,a@example.edu,A\n",
        ["line 1: the header row must be student_id,email,name, not id,email,name"],
    ),
    "bad email": (
        students("s0001,a@example.edu,A", "s0002,not-an-email,B", "s0003,c@example.edu,C"),
        ["line 3: email is not a valid address"],
    ),
    "missing fields": (
        students("s0001,a@example.edu,A", ",b@example.edu,B", "s0003,,C", "s0004,d@example.edu"),
        [
            "line 3: student_id is missing",
            "line 4: email is missing",
            "line 5: 2 fields, 3 expected (student_id,email,name)",
        ],
    ),
    "duplicate student": (
        students("s0001,a@example.edu,A", "s0002,b@example.edu,B", "s0001,c@example.edu,C"),
        ["line 4: student s0001 is already on line 2"],
    ),
    "too many rows": (roster(501), ["line 502: more than 500 students: split the file"]),
    "not utf-8": (
        "student_id,email,name\ns0001,a@example.edu,José\ns0002,b@example.edu,B\n".encode(
            "latin-1"
        ),
        ["line 2: not UTF-8 text (save the file as CSV UTF-8)"],
    ),
    "control character": (
        students("s0001,a@example.edu,A\x00B"),
        ["line 2: name contains a control character"],
    ),
}


@pytest.mark.parametrize(("content", "expected"), BAD_FILES.values(), ids=BAD_FILES.keys())
async def test_a_bad_file_assigns_nothing_and_lists_each_bad_line(
    client: httpx.AsyncClient,
    database: Database,
    clock: FrozenClock,
    acme: str,
    content: bytes,
    expected: list[str],
) -> None:
    await make_course(database, clock, seats=600)
    operator = await signed_in(client, database, clock, "acme", "operator")
    response = await upload(operator, content)
    assert response.status_code == 400
    assert "nothing was assigned" in response.text
    assert lines_of(response.text) == expected
    assert await enrollments(database) == []
    assert await seat_statuses(database) == {"available": 600}
    assert await people_count(database) == 0
    assert await actions(database, clock) == [("assign", "course", "refused")]


async def test_every_reason_of_a_line_is_listed_and_a_long_list_is_cut(
    client: httpx.AsyncClient, database: Database, clock: FrozenClock, acme: str
) -> None:
    await make_course(database, clock, seats=5)
    operator = await signed_in(client, database, clock, "acme", "operator")
    response = await upload(operator, students(f"{'x' * 300},bad,{'n' * 300}"))
    assert lines_of(response.text) == [
        "line 2: student_id is longer than 256 characters; email is not a valid address;"
        " name is longer than 256 characters"
    ]
    response = await upload(operator, students(*(f"s{n},bad,N" for n in range(150))))
    assert len(lines_of(response.text)) == 100
    assert "And 50 more bad lines." in response.text


async def test_students_already_enrolled_are_named_by_their_lines(
    client: httpx.AsyncClient, database: Database, clock: FrozenClock, acme: str
) -> None:
    await make_course(database, clock, seats=5)
    operator = await signed_in(client, database, clock, "acme", "operator")
    assert (await upload(operator, roster(2))).status_code == 200
    response = await upload(operator, roster(3))
    assert response.status_code == 400
    assert lines_of(response.text) == [
        "line 2: student s0001 already has a live enrollment in this course"
        " or an unexpired dedup lock",
        "line 3: student s0002 already has a live enrollment in this course"
        " or an unexpired dedup lock",
    ]
    assert len(await enrollments(database)) == 2


async def test_a_refusal_of_the_saga_is_shown_and_nothing_is_assigned(
    client: httpx.AsyncClient, database: Database, clock: FrozenClock, acme: str
) -> None:
    await make_course(database, clock, seats=2)
    operator = await signed_in(client, database, clock, "acme", "operator")
    response = await upload(operator, roster(3))
    assert response.status_code == 409
    assert "Nothing was assigned: 3 seats needed, 2 available." in response.text
    assert await enrollments(database) == []
    assert await seat_statuses(database) == {"available": 2}
    async with database.transaction() as session:
        (action,) = await OperatorService(session, clock).actions("acme")
    assert (action.verb, action.outcome) == ("assign", "refused")
    assert action.detail == {"students": 3, "error": "NO_SEATS_AVAILABLE"}


async def test_a_course_that_is_not_active_offers_no_upload_and_refuses_one(
    client: httpx.AsyncClient, database: Database, clock: FrozenClock, acme: str
) -> None:
    async with database.transaction() as session:
        await CourseService(session, clock).create(
            "acme", CourseCreate.model_validate(course_body())
        )
    operator = await signed_in(client, database, clock, "acme", "operator")
    page = await client.get(f"/console/courses/{COURSE}")
    assert "Students CSV" not in page.text
    assert "this one is draft" in page.text
    response = await upload(operator, roster(1))
    assert response.status_code == 409
    assert "Nothing was assigned: the course is draft." in response.text


async def test_the_options_set_a_cancel_window_and_a_dedup_window(
    client: httpx.AsyncClient, database: Database, clock: FrozenClock, acme: str
) -> None:
    """`Cancelable until` is read in the tenant's timezone, as every console time is."""
    from coursegate.tenancy.service import TenancyService

    async with database.transaction() as session:
        await TenancyService(session, clock).update_tenant(
            "acme", changes={"timezone": "America/Denver"}
        )
    await make_course(database, clock, seats=5)
    operator = await signed_in(client, database, clock, "acme", "operator")
    response = await upload(
        operator,
        roster(1),
        options={"cancelable_until": "2026-06-12T09:30", "dedup_window_days": "30"},
    )
    assert response.status_code == 200, response.text
    (made,) = await enrollments(database)
    assert made.cancelable_until is not None
    assert made.cancelable_until.isoformat() == "2026-06-12T15:30:00+00:00"
    assert made.dedup_window_days == 30
    for fields, message in (
        ({"cancelable_until": "2026-06-10T05:00"}, "Cancelable until must be in the future"),
        ({"cancelable_until": "soon"}, "Cancelable until is not a date and time"),
        ({"dedup_window_days": "a week"}, "Dedup window must be a whole number of days"),
        ({"dedup_window_days": "90"}, "must be less than the course&#39;s access_period_days"),
    ):
        refused = await upload(operator, roster(1, start=2), options=fields)
        assert refused.status_code == 400, fields
        assert message in refused.text
    assert len(await enrollments(database)) == 1


async def test_the_upload_has_the_batch_routes_body_limit(
    client: httpx.AsyncClient, database: Database, clock: FrozenClock, acme: str
) -> None:
    """500 students with long names pass 64 KiB, which the upload must take; 1 MiB is the
    limit, as for the API's batch routes."""
    await make_course(database, clock, seats=500)
    operator = await signed_in(client, database, clock, "acme", "operator")
    content = students(
        *(f"s{n:04d},s{n:04d}@example.edu,Student {n} {'a' * 200}" for n in range(500))
    )
    assert len(content) > 64 * 1024
    response = await upload(operator, content)
    assert response.status_code == 200, response.text
    assert "Assigned 500 students" in response.text
    too_large = await upload(operator, content * 9)
    assert too_large.status_code == 413


# Who may act, and on what


async def test_a_viewer_sees_no_control_and_is_refused_when_acting_anyway(
    client: httpx.AsyncClient, database: Database, clock: FrozenClock, acme: str
) -> None:
    await make_course(database, clock, seats=5)
    operator = await signed_in(client, database, clock, "acme", "operator")
    assert (
        await upload(operator, roster(1), options={"cancelable_until": "2026-06-20T12:00"})
    ).status_code == 200
    operator_page = await client.get(f"/console/courses/{COURSE}")
    for control in ("Students CSV", ">Assign</button>", ">Drop</button>", ">Cancel</button>"):
        assert control in operator_page.text
    (enrollment,) = await enrollments(database)
    client.cookies.clear()
    viewer = await signed_in(client, database, clock, "acme", "viewer")
    page = await client.get(f"/console/courses/{COURSE}")
    assert page.status_code == 200
    assert "Student 1" in page.text
    for control in ("Students CSV", ">Assign</button>", ">Drop</button>", ">Cancel</button>"):
        assert control not in page.text
    base = f"/console/courses/{COURSE}/enrollments/{enrollment.id}"
    assert (await upload(viewer, roster(1, start=2))).status_code == 403
    assert (await viewer.post(f"{base}/drop")).status_code == 403
    assert (await viewer.post(f"{base}/cancel")).status_code == 403
    assert (await client.get(f"{base}/drop")).status_code == 403
    assert (await client.get(f"{base}/cancel")).status_code == 403
    assert [e.status for e in await enrollments(database)] == ["assigned"]


async def test_an_action_without_the_csrf_token_is_refused(
    client: httpx.AsyncClient, database: Database, clock: FrozenClock, acme: str
) -> None:
    await make_course(database, clock, seats=5)
    operator = await signed_in(client, database, clock, "acme", "operator")
    response = await upload(operator, roster(1), token=False)
    assert response.status_code == 403
    assert "security token" in response.text
    assert await enrollments(database) == []
    assert (
        await upload(operator, roster(1), options={"cancelable_until": "2026-06-20T12:00"})
    ).status_code == 200
    (enrollment,) = await enrollments(database)
    base = f"/console/courses/{COURSE}/enrollments/{enrollment.id}"
    for action in ("drop", "cancel"):
        assert (await client.post(f"{base}/{action}")).status_code == 403
        forged = await client.post(f"{base}/{action}", headers={"X-CSRF-Token": "forged"})
        assert forged.status_code == 403
    assert [e.status for e in await enrollments(database)] == ["assigned"]


async def test_another_tenants_course_and_enrollments_are_not_found(
    client: httpx.AsyncClient,
    database: Database,
    clock: FrozenClock,
    acme: str,
    globex: str,
) -> None:
    await make_course(database, clock, tenant="globex", seats=5)
    globex_operator = await signed_in(client, database, clock, "globex", "operator")
    assert (await upload(globex_operator, roster(1))).status_code == 200
    (theirs,) = await enrollments(database, "globex")
    client.cookies.clear()
    await make_course(database, clock, course_id="ours", seats=5)
    operator = await signed_in(client, database, clock, "acme", "operator")
    assert (await client.get(f"/console/courses/{COURSE}")).status_code == 404
    # Whatever the file: a bad one is not looked at, a good one assigns nothing.
    assert (await upload(operator, b"")).status_code == 404
    assert (await upload(operator, roster(1))).status_code == 404
    for course in (COURSE, "ours"):
        base = f"/console/courses/{course}/enrollments/{theirs.id}"
        assert (await client.get(f"{base}/drop")).status_code == 404
        assert (await operator.post(f"{base}/drop")).status_code == 404
        assert (await operator.post(f"{base}/cancel")).status_code == 404
    assert (
        await operator.post("/console/courses/ours/enrollments/not-an-id/drop")
    ).status_code == 404
    assert [e.status for e in await enrollments(database, "globex")] == ["assigned"]
    assert await enrollments(database, "acme") == []
    assert await seat_statuses(database, "globex") == {"assigned": 1, "available": 4}


async def test_an_enrollment_is_acted_on_through_its_own_course_only(
    client: httpx.AsyncClient, database: Database, clock: FrozenClock, acme: str
) -> None:
    await make_course(database, clock, seats=5)
    await make_course(database, clock, course_id="other", seats=5)
    operator = await signed_in(client, database, clock, "acme", "operator")
    assert (await upload(operator, roster(1))).status_code == 200
    (enrollment,) = await enrollments(database)
    response = await operator.post(f"/console/courses/other/enrollments/{enrollment.id}/drop")
    assert response.status_code == 404
    assert [e.status for e in await enrollments(database)] == ["assigned"]


async def test_what_a_file_says_is_shown_as_text(
    client: httpx.AsyncClient, database: Database, clock: FrozenClock, acme: str
) -> None:
    await make_course(database, clock, seats=5)
    operator = await signed_in(client, database, clock, "acme", "operator")
    response = await upload(operator, students("s<b>1</b>,x@example.edu,<script>x</script>"))
    assert response.status_code == 200, response.text
    page = await client.get(f"/console/courses/{COURSE}")
    assert "<script>x</script>" not in page.text
    assert "&lt;script&gt;x&lt;/script&gt;" in page.text
    assert "s&lt;b&gt;1&lt;/b&gt;" in page.text
    refused = await upload(operator, students("<i>s2</i>,<script>y</script>,Y"))
    assert "<script>y</script>" not in refused.text
    assert "<i>s2</i>" not in refused.text
    (enrollment,) = await enrollments(database)
    confirm = await client.get(
        f"/console/courses/{COURSE}/enrollments/{enrollment.id}/drop",
        headers={"HX-Request": "true"},
    )
    assert "Drop &lt;script&gt;x&lt;/script&gt; (s&lt;b&gt;1&lt;/b&gt;)?" in confirm.text


# Drop and cancel


async def test_drop_asks_first_then_answers_with_the_seat_recovered(
    client: httpx.AsyncClient, database: Database, clock: FrozenClock, acme: str
) -> None:
    await make_course(database, clock, seats=3)
    operator = await signed_in(client, database, clock, "acme", "operator")
    assert (await upload(operator, roster(2))).status_code == 200
    first, second = await enrollments(database)
    base = f"/console/courses/{COURSE}/enrollments/{first.id}"
    htmx = {"HX-Request": "true", "X-CSRF-Token": operator.csrf}
    question = await client.get(f"{base}/drop", headers={"HX-Request": "true"})
    assert question.status_code == 200
    assert "<html" not in question.text
    assert ">Confirm</button>" in question.text
    assert "Drop Student 1 (s0001)?" in question.text
    assert f'hx-post="{base}/drop"' in question.text
    # Back puts the row's buttons back.
    back = await client.get(f"{base}/actions", headers={"HX-Request": "true"})
    assert ">Drop</button>" in back.text
    assert [e.status for e in await enrollments(database)] == ["assigned", "assigned"]

    answer = await client.post(f"{base}/drop", headers=htmx)
    assert answer.status_code == 200
    assert answer.headers["hx-retarget"] == "#course-state"
    assert answer.headers["hx-reswap"] == "outerHTML"
    assert (
        "Dropped Student 1 (s0001): the seat is available again (dropped before the last drop"
        " date, 2026-07-15)." in answer.text
    )
    assert "<caption>Dropped (1)</caption>" in answer.text
    assert [e.status for e in await enrollments(database)] == ["dropped", "assigned"]
    assert await seat_statuses(database) == {"available": 2, "assigned": 1}

    # Again: the refusal goes to the row, as the error fragment, and is recorded.
    again = await client.post(f"{base}/drop", headers=htmx)
    assert again.status_code == 409
    assert "hx-retarget" not in again.headers
    assert "the enrollment is dropped" in again.text
    async with database.transaction() as session:
        found = await OperatorService(session, clock).actions("acme")
    assert [(a.verb, a.object_id, a.outcome) for a in found[:2]] == [
        ("drop", str(first.id), "refused"),
        ("drop", str(first.id), "ok"),
    ]
    assert found[1].detail == {
        "course": COURSE,
        "seat_recovered": True,
        "reason": "before_last_drop_date",
    }
    activity = await client.get("/console/activity")
    assert "drop" in activity.text
    assert "seat_recovered: True" in activity.text

    # After the last drop date the seat is spent, and the answer says why.
    clock.advance(timedelta(days=40))
    client.cookies.clear()  # the session ended with the idle time: an admin signs in
    admin = await signed_in(client, database, clock, "acme", "admin")
    spent = await admin.post(f"/console/courses/{COURSE}/enrollments/{second.id}/drop")
    assert spent.status_code == 200
    assert "<html" in spent.text  # no script: the whole page
    assert (
        "Dropped Student 2 (s0002): the seat is spent: it was dropped on or after the last"
        " drop date (2026-07-15)." in spent.text
    )


async def test_without_script_drop_is_a_confirmation_page(
    client: httpx.AsyncClient, database: Database, clock: FrozenClock, acme: str
) -> None:
    await make_course(database, clock, seats=3)
    operator = await signed_in(client, database, clock, "acme", "operator")
    assert (await upload(operator, roster(1))).status_code == 200
    (enrollment,) = await enrollments(database)
    page = await client.get(f"/console/courses/{COURSE}/enrollments/{enrollment.id}/drop")
    assert page.status_code == 200
    assert "<html" in page.text
    assert "hx-post" not in page.text
    assert 'name="csrf_token"' in page.text
    assert f'href="/console/courses/{COURSE}">Back</a>' in page.text


async def test_cancel_inside_its_window_rolls_the_seat_back(
    client: httpx.AsyncClient, database: Database, clock: FrozenClock, acme: str
) -> None:
    await make_course(database, clock, seats=2)
    operator = await signed_in(client, database, clock, "acme", "operator")
    response = await upload(operator, roster(2), options={"cancelable_until": "2026-06-11T12:00"})
    assert response.status_code == 200
    first, second = await enrollments(database)
    question = await client.get(
        f"/console/courses/{COURSE}/enrollments/{first.id}/cancel", headers={"HX-Request": "true"}
    )
    assert "Cancel the enrollment of Student 1 (s0001)?" in question.text
    answer = await operator.post(
        f"/console/courses/{COURSE}/enrollments/{first.id}/cancel",
        {},
    )
    assert answer.status_code == 200
    assert (
        "Canceled the enrollment of Student 1 (s0001): its seat was rolled back and a new seat"
        " is available." in answer.text
    )
    assert "canceled by operator@acme.test" in answer.text
    assert await seat_statuses(database) == {"rolled_back": 1, "available": 1, "assigned": 1}
    # Once the window has passed, the button is gone and a request anyway is refused.
    clock.advance(timedelta(days=2))
    client.cookies.clear()  # the session ended with the idle time: an admin signs in
    admin = await signed_in(client, database, clock, "acme", "admin")
    page = await client.get(f"/console/courses/{COURSE}")
    assert ">Cancel</button>" not in page.text
    late = await admin.post(f"/console/courses/{COURSE}/enrollments/{second.id}/cancel")
    assert late.status_code == 409
    assert "the cancel window has passed" in late.text
    assert [a for a in await actions(database, clock) if a[0] == "cancel"] == [
        ("cancel", "enrollment", "refused"),
        ("cancel", "enrollment", "ok"),
    ]


# In a browser


async def test_an_operator_assigns_from_a_file_and_drops_in_the_browser(
    live_serve: LiveConsole, page: Page, acme: str, tmp_path: Path
) -> None:
    await make_course(live_serve.database, live_serve.clock, seats=4)
    await make_course(
        live_serve.database, live_serve.clock, course_id="later", seats=0, name="Later"
    )
    password = await live_serve.operator("acme", "op@acme.test", "operator")
    await sign_in(page, live_serve.url, "acme", "op@acme.test", password)

    await page.get_by_role("link", name="Courses", exact=True).click()
    await expect(page.get_by_role("heading", name="Courses", exact=True)).to_be_visible()
    await check_page(page, "courses")
    await page.get_by_role("link", name="Financial Literacy").click()
    await expect(page.get_by_role("heading", name="Financial Literacy")).to_be_visible()

    # A bad file first: nothing assigned, the line named.
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "s0001,ann@example.edu,Ann Lee\ns0002,bo-at-example,Bo\n")
    await page.get_by_label("Students CSV").set_input_files(bad)
    await page.get_by_role("button", name="Assign", exact=True).click()
    await expect(page.get_by_role("alert")).to_contain_text("line 3: email is not a valid address")
    await check_page(page, "course-refused-file")

    good = tmp_path / "students.csv"
    good.write_text(HEADER + "s0001,ann@example.edu,Ann Lee\ns0002,bo@example.edu,Bo Park\n")
    await page.get_by_label("Students CSV").set_input_files(good)
    await page.get_by_role("button", name="Assign", exact=True).click()
    await expect(page.get_by_role("status")).to_contain_text("Assigned 2 students")
    assigned = page.get_by_role("table", name="Assigned (2)")
    await expect(assigned.get_by_role("row", name=re.compile("Ann Lee"))).to_be_visible()
    await expect(assigned.get_by_role("row", name=re.compile("Bo Park"))).to_be_visible()
    await check_page(page, "course")

    row = assigned.get_by_role("row", name=re.compile("Ann Lee"))
    await row.get_by_role("button", name="Drop", exact=True).click()
    confirm = row.get_by_role("button", name="Confirm", exact=True)
    await expect(confirm).to_be_focused()
    await expect(row).to_contain_text("The seat comes back if")
    await check_page(page, "course-confirm-drop")
    await confirm.click()
    outcome = page.locator("#course-state").get_by_role("status")
    await expect(outcome).to_contain_text("Dropped Ann Lee (s0001): the seat is available again")
    await expect(page.get_by_text("Assigned 2 students")).to_have_count(0)
    await expect(page.get_by_role("table", name="Dropped (1)")).to_contain_text("Ann Lee")
    await expect(page.get_by_role("table", name="Assigned (1)")).to_contain_text("Bo Park")
    await expect(page.get_by_role("table", name="Seats by status")).to_contain_text("3")
    await check_page(page, "course-dropped")

    await page.get_by_role("link", name="Activity", exact=True).click()
    await expect(page.get_by_role("table")).to_contain_text("drop")
    await expect(page.get_by_role("table")).to_contain_text("assign")
