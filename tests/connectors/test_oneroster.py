"""Runs of a `oneroster` connector against a real fake OneRoster 1.2 partner on loopback,
on both databases: students become people, their records in mapped classes become
enrollments with no seat, saga or invite, `tobedeleted` cancels, each collection keeps
its own watermark, and what cannot be taken yet is rejected and replayed later."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from coursegate.config import Settings
from coursegate.connectors.runner import Runner, RunResult
from coursegate.connectors.schemas import ConnectorCreate
from coursegate.connectors.service import ConnectorService
from coursegate.db import Database
from coursegate.enrollments.adapters import FAKE_FILE, FakePartners, adapters_from_settings
from coursegate.enrollments.service import access_group
from coursegate.kit.clock import FrozenClock
from coursegate.kit.secrets import EnvSecretStore, SecretStores
from coursegate.kit.timefmt import format_instant
from coursegate.models import (
    Connector,
    ConnectorReject,
    Enrollment,
    Event,
    OutboundEmail,
    Person,
    PersonIdentifier,
    ScheduledEvent,
    Seat,
)
from tests.conftest import bearer
from tests.connectors.conftest import SECRET_ENV, Sleeps
from tests.connectors.fake_partners import (
    ROSTER_BASE,
    Fault,
    OneRosterFake,
    oneroster_class,
    oneroster_enrollment,
    oneroster_user,
)
from tests.connectors.test_cli import pull as pull_cli
from tests.connectors.test_cli import summary
from tests.courses.helpers import create_course, details_of
from tests.setup.helpers import create_program

CONNECTOR = "sis"


@pytest.fixture
def sis() -> Iterator[OneRosterFake]:
    """The partner; unless a test serves broken records on purpose (`conformant = False`),
    every page it served must have been valid by 1EdTech's own description."""
    with OneRosterFake() as partner:
        yield partner
        if partner.conformant:
            assert partner.schema_violations == []


def stores(sis: OneRosterFake) -> SecretStores:
    return SecretStores({"env": EnvSecretStore({SECRET_ENV: sis.client_secret})})


@pytest.fixture
async def connector(
    client: httpx.AsyncClient, database: Database, clock: FrozenClock, sis: OneRosterFake, acme: str
) -> str:
    """Course `algebra` is class-a through the connector's `class_map`, course `biology`
    is class-b through its own `external_ids`; class-c is nobody's. Both courses active."""
    await create_course(client, acme, id="algebra")
    await create_course(client, acme, id="biology", external_ids={"oneroster": "class-b"})
    for course in ("algebra", "biology"):
        response = await client.post(f"/v1/courses/{course}/activate", headers=bearer(acme))
        assert response.status_code == 200, response.text
    body = ConnectorCreate.model_validate(
        {
            "id": CONNECTOR,
            "kind": "oneroster",
            "config": {
                "token_url": sis.token_url,
                "api_base_url": sis.api_base_url,
                "client_id": sis.client_id,
                "client_secret_ref": f"env:{SECRET_ENV}",
                "class_map": {"class-a": "algebra"},
            },
        }
    )
    async with database.transaction() as session:
        await ConnectorService(session, clock, stores(sis), allow_private=True).create("acme", body)
    return CONNECTOR


async def pull(
    settings: Settings, database: Database, clock: FrozenClock, sis: OneRosterFake, **kwargs: Any
) -> RunResult:
    return await runner(settings, database, clock, sis).run(
        "acme", CONNECTOR, trigger="manual", **kwargs
    )


def runner(
    settings: Settings, database: Database, clock: FrozenClock, sis: OneRosterFake
) -> Runner:
    return Runner(
        database,
        clock,
        stores(sis),
        adapters_from_settings(settings),
        allow_private=True,
        sleep=Sleeps(),
    )


async def rows(database: Database, model: Any) -> list[Any]:
    async with database.transaction() as session:
        return list((await session.scalars(select(model))).all())


async def roster_of(database: Database, course: str) -> dict[str, Enrollment]:
    """The course's enrollments by their person's `oneroster_sourced_id`."""
    async with database.transaction() as session:
        found = await session.execute(
            select(PersonIdentifier.value, Enrollment)
            .join(Enrollment, Enrollment.person_id == PersonIdentifier.person_id)
            .where(
                PersonIdentifier.namespace == "oneroster_sourced_id",
                Enrollment.course_id == course,
            )
        )
        return dict(found.all())


def school(sis: OneRosterFake) -> None:
    """Three students and a teacher; a fourth student left the school."""
    sis.users = [
        oneroster_user(1),
        oneroster_user(2),
        oneroster_user(3, email=None),
        oneroster_user(4, role="teacher"),
        oneroster_user(5, status="tobedeleted"),
    ]
    sis.classes = [oneroster_class(c) for c in ("class-a", "class-b", "class-c")]
    sis.enrollments = [
        oneroster_enrollment(1, user="user-1", class_id="class-a"),
        oneroster_enrollment(2, user="user-2", class_id="class-b"),
        oneroster_enrollment(3, user="user-3", class_id="class-c"),
        oneroster_enrollment(4, user="user-4", class_id="class-a", role="teacher"),
        oneroster_enrollment(5, user="user-2", class_id="class-a"),
    ]


async def test_students_become_people_and_enrollments_without_seats(
    settings: Settings, database: Database, clock: FrozenClock, sis: OneRosterFake, connector: str
) -> None:
    school(sis)
    result = await pull(settings, database, clock, sis)
    assert (result.status, result.pages, result.created, result.rejected) == (
        "succeeded",
        3,
        6,  # three people, three enrollments
        0,
    )
    assert result.skipped == 2 + 3 + 2  # users 4 and 5, every class, the teacher and class-c
    people = {p.email for p in await rows(database, Person)}
    assert people == {"learner1@school.example", "learner2@school.example", None}
    identifiers = {(i.namespace, i.value) for i in await rows(database, PersonIdentifier)}
    assert identifiers == {("oneroster_sourced_id", f"user-{n}") for n in (1, 2, 3)}

    algebra, biology = await roster_of(database, "algebra"), await roster_of(database, "biology")
    assert sorted(algebra) == ["user-1", "user-2"]
    assert sorted(biology) == ["user-2"]
    for enrollment in [*algebra.values(), *biology.values()]:
        assert (enrollment.status, enrollment.seat_id, enrollment.batch_id) == (
            "assigned",
            None,
            None,
        )
        assert enrollment.access_ends_at == clock.now() + timedelta(days=90)
    assert await rows(database, Seat) == []
    assert await rows(database, OutboundEmail) == []  # a roster sends no invite
    created = [e for e in await rows(database, Event) if e.type == "enrollment.created"]
    assert sorted(e.data["course_id"] for e in created) == ["algebra", "algebra", "biology"]
    kinds = {(s.enrollment_id, s.kind) for s in await rows(database, ScheduledEvent)}
    assert (algebra["user-1"].id, "course_expired") in kinds

    marks = {
        "users": ROSTER_BASE + timedelta(minutes=5),
        "classes": ROSTER_BASE,
        "enrollments": ROSTER_BASE + timedelta(minutes=5),
    }
    assert result.watermark == max(marks.values())
    async with database.transaction() as session:
        stored = await session.get(Connector, ("acme", CONNECTOR))
        assert stored is not None
        assert stored.watermarks is not None
        assert {c: at[:19] for c, at in stored.watermarks.items()} == {
            c: at.isoformat()[:19] for c, at in marks.items()
        }

    first_requests = len(sis.requests)
    again = await pull(settings, database, clock, sis)
    assert (again.created, again.skipped, again.rejected, again.pages) == (0, 0, 0, 0)
    filters = {
        r.route: r.query.get("filter") for r in sis.requests[first_requests:] if r.route != "token"
    }
    assert filters == {
        "users": f"dateLastModified>'{format_instant(marks['users'])}'",
        "classes": f"dateLastModified>'{format_instant(marks['classes'])}'",
        "enrollments": f"dateLastModified>'{format_instant(marks['enrollments'])}'",
    }


async def test_a_record_listed_again_creates_nothing_twice(
    settings: Settings, database: Database, clock: FrozenClock, sis: OneRosterFake, connector: str
) -> None:
    school(sis)
    await pull(settings, database, clock, sis)
    # The partner touched every record: all of them come back on the incremental run.
    later = ROSTER_BASE + timedelta(hours=1)
    for collection in (sis.users, sis.classes, sis.enrollments):
        for record in collection:
            record["dateLastModified"] = format_instant(later)
    sis.users[0]["email"] = "ada.new@school.example"
    again = await pull(settings, database, clock, sis)
    assert (again.created, again.rejected) == (0, 0)
    assert len(await rows(database, Enrollment)) == 3
    assert len(await rows(database, Person)) == 3
    assert "ada.new@school.example" in {p.email for p in await rows(database, Person)}


async def test_tobedeleted_cancels_the_enrollment_by_the_roster(
    settings: Settings, database: Database, clock: FrozenClock, sis: OneRosterFake, connector: str
) -> None:
    school(sis)
    await pull(settings, database, clock, sis)
    algebra = await roster_of(database, "algebra")
    person = str(algebra["user-1"].person_id)
    partners = FakePartners(settings.var_dir / FAKE_FILE)
    await partners.grant(access_group("acme", "algebra"), [person])

    later = ROSTER_BASE + timedelta(hours=1)
    sis.enrollments[0] = oneroster_enrollment(
        1, user="user-1", class_id="class-a", status="tobedeleted", modified=later
    )
    result = await pull(settings, database, clock, sis)
    assert (result.status, result.created, result.rejected) == ("succeeded", 0, 0)
    canceled = (await roster_of(database, "algebra"))["user-1"]
    assert (canceled.status, canceled.canceled_by) == ("canceled", "roster")
    assert person not in partners.members(access_group("acme", "algebra"))
    events = [e for e in await rows(database, Event) if e.type == "enrollment.canceled"]
    assert [e.data["enrollment_id"] for e in events] == [str(canceled.id)]
    pending = {
        s.kind for s in await rows(database, ScheduledEvent) if s.enrollment_id == canceled.id
    }
    assert pending == set()
    # Listed again, the deleted record changes nothing more.
    sis.enrollments[0]["dateLastModified"] = format_instant(later + timedelta(minutes=1))
    await pull(settings, database, clock, sis)
    assert len([e for e in await rows(database, Event) if e.type == "enrollment.canceled"]) == 1


async def test_a_deleted_class_cancels_what_its_records_made(
    settings: Settings, database: Database, clock: FrozenClock, sis: OneRosterFake, connector: str
) -> None:
    school(sis)
    await pull(settings, database, clock, sis)
    sis.classes[0] = oneroster_class(
        "class-a", status="tobedeleted", modified=ROSTER_BASE + timedelta(hours=1)
    )
    await pull(settings, database, clock, sis)
    algebra = await roster_of(database, "algebra")
    assert {u: e.status for u, e in algebra.items()} == {"user-1": "canceled", "user-2": "canceled"}
    assert [e.status for e in (await roster_of(database, "biology")).values()] == ["assigned"]


async def test_what_cannot_be_taken_yet_is_rejected_then_replayed(
    settings: Settings,
    client: httpx.AsyncClient,
    database: Database,
    clock: FrozenClock,
    sis: OneRosterFake,
    connector: str,
    acme: str,
) -> None:
    await create_course(client, acme, id="chemistry", external_ids={"oneroster": "class-d"})
    sis.users = [oneroster_user(1)]
    sis.classes = [oneroster_class("class-a"), oneroster_class("class-d")]
    sis.enrollments = [
        oneroster_enrollment(1, user="user-1", class_id="class-a"),
        oneroster_enrollment(2, user="user-9", class_id="class-a"),  # not pulled yet
        oneroster_enrollment(3, user="user-1", class_id="class-d"),  # course still a draft
    ]
    result = await pull(settings, database, clock, sis)
    assert (result.status, result.created, result.rejected) == ("succeeded", 2, 2)
    rejects = {r.external_id: r for r in await rows(database, ConnectorReject)}
    assert rejects["enr-2"].reason == "user user-9 has not been pulled"
    assert rejects["enr-2"].collection == "enrollments"
    assert rejects["enr-3"].reason == "course chemistry of class class-d is not active"
    assert rejects["enr-3"].raw == sis.enrollments[2]

    sis.users.append(oneroster_user(9, modified=ROSTER_BASE + timedelta(hours=1)))
    await pull(settings, database, clock, sis)
    replayed = await runner(settings, database, clock, sis).replay_rejects("acme", CONNECTOR)
    assert (replayed.replayed, replayed.created, replayed.resolved, replayed.still_rejected) == (
        2,
        1,
        1,
        1,
    )
    assert sorted(await roster_of(database, "algebra")) == ["user-1", "user-9"]
    response = await client.post("/v1/courses/chemistry/activate", headers=bearer(acme))
    assert response.status_code == 200, response.text
    replayed = await runner(settings, database, clock, sis).replay_rejects("acme", CONNECTOR)
    assert (replayed.replayed, replayed.created, replayed.resolved) == (1, 1, 1)
    assert sorted(await roster_of(database, "chemistry")) == ["user-1"]


async def test_bad_records_are_rejected_and_do_not_pin_the_watermark(
    settings: Settings, database: Database, clock: FrozenClock, sis: OneRosterFake, connector: str
) -> None:
    sis.conformant = False  # broken records, on purpose
    newest = ROSTER_BASE + timedelta(minutes=30)
    no_id = oneroster_user(6, modified=newest)
    del no_id["sourcedId"]
    bad_date = oneroster_user(7)
    bad_date["dateLastModified"] = "yesterday"
    no_user = oneroster_enrollment(8, user="user-1", class_id="class-a")
    del no_user["user"]
    sis.users = [
        oneroster_user(1),
        "not a record",  # type: ignore[list-item]
        no_id,
        bad_date,
        oneroster_user(2, status="archived"),
        oneroster_user(3, email="not-an-address"),  # kept, without the email
    ]
    sis.enrollments = [no_user]
    result = await pull(settings, database, clock, sis)
    assert (result.status, result.created, result.rejected) == ("succeeded", 2, 5)
    assert result.warnings == 1
    reasons = sorted(r.reason for r in await rows(database, ConnectorReject))
    assert reasons == sorted(
        [
            "the record is not a JSON object",
            "sourcedId is missing or not a string of 1 to 128 characters",
            "dateLastModified is not an RFC 3339 instant with an offset",
            "status is neither active nor tobedeleted",
            "user.sourcedId is missing or not a string of 1 to 128 characters",
        ]
    )
    assert result.watermark == newest  # the record without an id still moved it
    rejected = [e for e in await rows(database, Event) if e.type == "connector.entry.rejected"]
    assert len(rejected) == 5


async def test_a_dry_run_counts_exactly_and_writes_nothing(
    settings: Settings, database: Database, clock: FrozenClock, sis: OneRosterFake, connector: str
) -> None:
    school(sis)
    sis.enrollments.append(oneroster_enrollment(9, user="user-9", class_id="class-a"))
    dry = await pull(settings, database, clock, sis, dry_run=True)
    assert (dry.status, dry.created, dry.rejected, dry.watermark) == ("succeeded", 6, 1, None)
    for model in (Person, Enrollment, ConnectorReject, Event):
        assert await rows(database, model) == []
    real = await pull(settings, database, clock, sis)
    assert (real.created, real.skipped, real.rejected) == (dry.created, dry.skipped, dry.rejected)


async def test_collections_are_read_to_their_total_count(
    settings: Settings, database: Database, clock: FrozenClock, sis: OneRosterFake, connector: str
) -> None:
    sis.users = [oneroster_user(n) for n in range(1, 201)]
    result = await pull(settings, database, clock, sis)
    assert (result.pages, result.created) == (2, 200)
    # X-Total-Count said 200: no third request for an empty page.
    assert [r.query["offset"] for r in sis.at("users")] == ["0", "100"]
    assert len(sis.at("classes")) == len(sis.at("enrollments")) == 1


async def test_a_partner_failing_mid_run_leaves_every_watermark(
    settings: Settings, database: Database, clock: FrozenClock, sis: OneRosterFake, connector: str
) -> None:
    school(sis)
    sis.fail_from_offset = {"enrollments": 0}
    failed = await pull(settings, database, clock, sis)
    assert (failed.status, failed.error_class, failed.transient) == ("failed", "http_5xx", True)
    async with database.transaction() as session:
        stored = await session.get(Connector, ("acme", CONNECTOR))
        assert stored is not None
        assert (stored.watermark, stored.watermarks) == (None, {})
    assert len(await rows(database, Person)) == 3  # the pages before the failure stay

    sis.fail_from_offset = {}
    healed = await pull(settings, database, clock, sis)
    assert (healed.status, healed.created) == ("succeeded", 3)  # the enrollments only
    assert len(await rows(database, Person)) == 3


async def test_a_rostered_enrollment_drops_without_a_seat(
    client: httpx.AsyncClient,
    settings: Settings,
    database: Database,
    clock: FrozenClock,
    sis: OneRosterFake,
    connector: str,
    acme: str,
) -> None:
    school(sis)
    await pull(settings, database, clock, sis)
    enrollment = (await roster_of(database, "biology"))["user-2"]
    response = await client.post(f"/v1/enrollments/{enrollment.id}/drop", headers=bearer(acme))
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["enrollment"]["status"], body["seat_recovered"], body["reason"]) == (
        "dropped",
        False,
        "no_seat",
    )
    response = await client.post(
        f"/v1/enrollments/{(await roster_of(database, 'algebra'))['user-1'].id}/cancel",
        headers=bearer(acme),
        json={"author": "registrar"},
    )
    assert response.status_code == 409, response.text
    assert response.json()["error"] == "NOT_CANCELABLE"


async def test_oneroster_is_a_course_key_and_no_provider_id(
    client: httpx.AsyncClient, acme: str
) -> None:
    course = await create_course(client, acme, external_ids={"oneroster": "class-7"})
    assert course["external_ids"] == {"oneroster": "class-7"}
    await create_program(client, acme)
    response = await client.post(
        "/v1/providers",
        headers=bearer(acme),
        json={
            "id": "oneroster",
            "program_id": "co",
            "scheme": "hmac-authorization",
            "keys": [{"key_id": "k1"}],
        },
    )
    assert response.status_code == 400, response.text
    assert details_of(response) == [("id", "invalid")]


async def test_coursegate_pull_runs_a_roster(
    settings: Settings, sis: OneRosterFake, connector: str
) -> None:
    school(sis)
    args = ("pull", CONNECTOR, "--tenant", "acme")
    dry = await asyncio.to_thread(pull_cli, settings, sis, *args, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert summary(dry) == "pulled sis: pages=3 created=6 skipped=7 rejected=0 watermark=none"
    result = await asyncio.to_thread(pull_cli, settings, sis, *args)
    assert result.returncode == 0, result.stderr
    assert summary(result) == (
        "pulled sis: pages=3 created=6 skipped=7 rejected=0 watermark=2026-08-01T07:05:00.000Z"
    )
    sis.faults["enrollments"].append(Fault(status=403))
    sis.enrollments[0]["dateLastModified"] = "2026-08-01T08:00:00.000Z"
    refused = await asyncio.to_thread(pull_cli, settings, sis, *args)
    assert refused.returncode == 1, refused.stderr


async def test_a_provider_capping_its_pages_loses_nobody(
    settings: Settings, database: Database, clock: FrozenClock, sis: OneRosterFake, connector: str
) -> None:
    """`limit` is a maximum: 50 a page while 120 are counted is not the end of the list."""
    sis.users = [oneroster_user(n) for n in range(1, 121)]
    sis.page_cap = 50
    result = await pull(settings, database, clock, sis)
    assert (result.status, result.created) == ("succeeded", 120)
    assert len(await rows(database, Person)) == 120


async def test_without_a_count_paging_goes_on_to_an_empty_page(
    settings: Settings, database: Database, clock: FrozenClock, sis: OneRosterFake, connector: str
) -> None:
    sis.users = [oneroster_user(n) for n in range(1, 121)]
    sis.page_cap = 50
    sis.total_count = False
    result = await pull(settings, database, clock, sis)
    assert (result.status, result.created) == ("succeeded", 120)
    assert len(await rows(database, Person)) == 120


@pytest.mark.parametrize("email", ["", "not an address", "  "])
async def test_a_student_whose_email_is_unusable_is_kept_without_it(
    settings: Settings,
    database: Database,
    clock: FrozenClock,
    sis: OneRosterFake,
    connector: str,
    email: str,
) -> None:
    """An empty or odd `email` is valid OneRoster: the student and their enrollments stay."""
    sis.users = [oneroster_user(1, email=email), oneroster_user(2)]
    sis.classes = [oneroster_class("class-a")]
    sis.enrollments = [oneroster_enrollment(1, user="user-1", class_id="class-a")]
    result = await pull(settings, database, clock, sis)
    assert (result.status, result.rejected, result.created) == ("succeeded", 0, 3)
    assert result.warnings == 1
    assert result.message == "users kept without an email (the roster's is not an address): 1"
    people = {p.email for p in await rows(database, Person)}
    assert people == {None, "learner2@school.example"}
    assert sorted(await roster_of(database, "algebra")) == ["user-1"]
    assert await rows(database, ConnectorReject) == []


async def test_inactive_is_read_as_tobedeleted(
    settings: Settings, database: Database, clock: FrozenClock, sis: OneRosterFake, connector: str
) -> None:
    """A pre-1.1 `inactive` withdraws the student, as the description says it must."""
    sis.conformant = False  # `inactive` is outside 1.2's enumeration: an older provider
    sis.users = [oneroster_user(1)]
    sis.classes = [oneroster_class("class-a")]
    sis.enrollments = [oneroster_enrollment(1, user="user-1", class_id="class-a")]
    await pull(settings, database, clock, sis)
    assert (await roster_of(database, "algebra"))["user-1"].status == "assigned"
    sis.enrollments = [
        oneroster_enrollment(
            1,
            user="user-1",
            class_id="class-a",
            status="inactive",
            modified=ROSTER_BASE + timedelta(hours=1),
        )
    ]
    result = await pull(settings, database, clock, sis)
    assert result.rejected == 0
    withdrawn = (await roster_of(database, "algebra"))["user-1"]
    assert (withdrawn.status, withdrawn.canceled_by) == ("canceled", "roster")


async def test_the_token_is_asked_for_the_rostering_read_only_scope(
    settings: Settings, database: Database, clock: FrozenClock, sis: OneRosterFake, connector: str
) -> None:
    school(sis)
    await pull(settings, database, clock, sis)
    assert sis.scopes_asked == [
        "https://purl.imsglobal.org/spec/or/v1p2/scope/roster-core.readonly"
    ]


async def test_a_provider_on_the_1_1_path_with_its_own_scope(
    client: httpx.AsyncClient,
    settings: Settings,
    database: Database,
    clock: FrozenClock,
    acme: str,
) -> None:
    """Some large providers serve the 1.2 model on 1.1's path: the config gives the server
    and `version: v1p1`, and the scope they grant."""
    await create_course(client, acme, id="algebra")
    assert (await client.post("/v1/courses/algebra/activate", headers=bearer(acme))).is_success
    with OneRosterFake(path="/ims/oneroster/v1p1") as legacy:
        school(legacy)
        body = ConnectorCreate.model_validate(
            {
                "id": CONNECTOR,
                "kind": "oneroster",
                "config": {
                    "token_url": legacy.token_url,
                    "api_base_url": legacy.base_url,
                    "version": "v1p1",
                    "scope": "roster.readonly",
                    "client_id": legacy.client_id,
                    "client_secret_ref": f"env:{SECRET_ENV}",
                    "class_map": {"class-a": "algebra"},
                },
            }
        )
        async with database.transaction() as session:
            service = ConnectorService(session, clock, stores(legacy), allow_private=True)
            await service.create("acme", body)
        result = await pull(settings, database, clock, legacy)
        assert (result.status, result.rejected) == ("succeeded", 0)
        assert sorted(await roster_of(database, "algebra")) == ["user-1", "user-2"]
        assert legacy.scopes_asked == ["roster.readonly"]


async def test_the_same_unchanged_record_is_rejected_once_however_often_it_comes(
    settings: Settings, database: Database, clock: FrozenClock, sis: OneRosterFake, connector: str
) -> None:
    """A provider that sends everything every time (reading again from long ago does the
    same): one reject per record and version, brought up to date; a new version is news."""
    sis.users = [oneroster_user(1)]
    sis.classes = [oneroster_class("class-a")]
    orphan = oneroster_enrollment(9, user="user-9", class_id="class-a")  # never pulled
    sis.enrollments = [orphan]
    first = await pull(settings, database, clock, sis)
    clock.advance(timedelta(hours=1))
    again = await pull(settings, database, clock, sis, since=ROSTER_BASE - timedelta(days=1))
    assert (first.rejected, again.rejected) == (1, 1)
    (reject,) = await rows(database, ConnectorReject)
    assert reject.run_id == again.run_id
    assert reject.created_at == clock.now() - timedelta(hours=1)
    events = [e for e in await rows(database, Event) if e.type == "connector.entry.rejected"]
    assert len(events) == 1

    sis.enrollments = [
        {**orphan, "dateLastModified": format_instant(ROSTER_BASE + timedelta(days=1))}
    ]
    await pull(settings, database, clock, sis, since=ROSTER_BASE - timedelta(days=1))
    assert len(await rows(database, ConnectorReject)) == 2
    events = [e for e in await rows(database, Event) if e.type == "connector.entry.rejected"]
    assert len(events) == 2


def big_class(sis: OneRosterFake, size: int = 12) -> None:
    """class-a (course algebra) with `size` students, each with their enrollment record."""
    sis.users = [oneroster_user(n) for n in range(1, size + 1)]
    sis.classes = [oneroster_class("class-a")]
    sis.enrollments = [
        oneroster_enrollment(n, user=f"user-{n}", class_id="class-a") for n in range(1, size + 1)
    ]


async def held_runs(client: httpx.AsyncClient, key: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/connectors/{CONNECTOR}/runs", headers=bearer(key))
    assert response.status_code == 200, response.text
    return [r for r in response.json()["data"] if r["status"] == "held"]


async def test_a_glitch_withdrawing_a_whole_class_is_held_until_a_person_confirms(
    client: httpx.AsyncClient,
    settings: Settings,
    database: Database,
    clock: FrozenClock,
    sis: OneRosterFake,
    connector: str,
    acme: str,
) -> None:
    big_class(sis)
    await pull(settings, database, clock, sis)
    assert len(await roster_of(database, "algebra")) == 12
    sis.classes = [
        oneroster_class("class-a", status="tobedeleted", modified=ROSTER_BASE + timedelta(hours=1))
    ]
    result = await pull(settings, database, clock, sis)
    assert result.status == "held"
    assert "would cancel 12 of the 12 live enrollments" in (result.message or "")
    assert {e.status for e in (await roster_of(database, "algebra")).values()} == {"assigned"}
    (held,) = [e for e in await rows(database, Event) if e.type == "connector.run.held"]
    assert held.data == {
        "connector_id": CONNECTOR,
        "run_id": str(result.run_id),
        "reason": "it would cancel 12 of the 12 live enrollments it made",
        "would_cancel": 12,
    }
    # The watermark moved on: the next run does not hold the same records again.
    again = await pull(settings, database, clock, sis)
    assert again.status == "succeeded", again
    (waiting,) = await held_runs(client, acme)

    confirmed = await client.post(
        f"/v1/connectors/{CONNECTOR}/runs/{waiting['id']}/confirm", headers=bearer(acme)
    )
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] == "succeeded"
    assert confirmed.json()["message"].startswith("12 cancellations confirmed by api key")
    canceled = await roster_of(database, "algebra")
    assert {(e.status, e.canceled_by) for e in canceled.values()} == {("canceled", "roster")}
    twice = await client.post(
        f"/v1/connectors/{CONNECTOR}/runs/{waiting['id']}/confirm", headers=bearer(acme)
    )
    assert (twice.status_code, twice.json()["error"]) == (409, "RUN_NOT_HELD")


async def test_a_discarded_hold_cancels_nobody(
    client: httpx.AsyncClient,
    settings: Settings,
    database: Database,
    clock: FrozenClock,
    sis: OneRosterFake,
    connector: str,
    acme: str,
    globex: str,
) -> None:
    big_class(sis)
    await pull(settings, database, clock, sis)
    later = ROSTER_BASE + timedelta(hours=1)
    sis.enrollments = [
        oneroster_enrollment(
            n, user=f"user-{n}", class_id="class-a", status="tobedeleted", modified=later
        )
        for n in range(1, 12)
    ]
    result = await pull(settings, database, clock, sis)
    assert result.status == "held"
    path = f"/v1/connectors/{CONNECTOR}/runs/{result.run_id}"
    assert (await client.post(f"{path}/discard", headers=bearer(globex))).status_code == 404
    assert (await client.post(f"{path}/discard")).status_code == 401
    discarded = await client.post(f"{path}/discard", headers=bearer(acme))
    assert discarded.status_code == 200, discarded.text
    assert discarded.json()["message"].startswith("cancellations discarded by api key")
    assert {e.status for e in (await roster_of(database, "algebra")).values()} == {"assigned"}
    confirm_after = await client.post(f"{path}/confirm", headers=bearer(acme))
    assert confirm_after.status_code == 409
    assert {e.status for e in (await roster_of(database, "algebra")).values()} == {"assigned"}


async def test_an_ordinary_withdrawal_is_canceled_at_the_end_of_the_run(
    settings: Settings, database: Database, clock: FrozenClock, sis: OneRosterFake, connector: str
) -> None:
    """Two of twelve leave: under the share, canceled by the run that saw it."""
    big_class(sis)
    await pull(settings, database, clock, sis)
    later = ROSTER_BASE + timedelta(hours=1)
    for n in (1, 2):
        sis.enrollments[n - 1] = oneroster_enrollment(
            n, user=f"user-{n}", class_id="class-a", status="tobedeleted", modified=later
        )
    result = await pull(settings, database, clock, sis)
    assert result.status == "succeeded"
    statuses = {u: e.status for u, e in (await roster_of(database, "algebra")).items()}
    assert [u for u, s in statuses.items() if s == "canceled"] == sorted(["user-1", "user-2"])


async def test_a_partner_that_ignores_offset_fails_the_run_instead_of_looping(
    settings: Settings, database: Database, clock: FrozenClock, sis: OneRosterFake, connector: str
) -> None:
    """Counting 120 but serving the first page at every offset: the run stops at the first
    repeated page, says why, and keeps the watermarks where they were."""
    sis.users = [oneroster_user(n) for n in range(1, 121)]
    sis.page_cap = 50
    sis.ignores_offset = True
    result = await pull(settings, database, clock, sis)
    assert (result.status, result.error_class) == ("failed", "invalid_response")
    assert "repeats records already read: the partner ignores offset" in (result.message or "")
    assert result.watermark is None
    assert len(sis.at("users")) == 2
