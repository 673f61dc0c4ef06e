"""The provisioning saga (SPEC §6): all of a batch or nothing of it.

A failure at each forward step leaves nothing of the batch behind (rows, seats,
events, emails, partner state); an undo that fails is retried; concurrent
assignments never oversell seats nor enroll a person twice; and a process
killed in the middle of a saga, or of its compensation, finishes the
compensation after a restart.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from dbos import DBOS, DBOSClient, WorkflowStatus
from fastapi import FastAPI
from sqlalchemy import select

from coursegate import durable
from coursegate.config import Settings, sync_database_url
from coursegate.db import Database
from coursegate.durable import DBOS_SCHEMA
from coursegate.enrollments import saga
from coursegate.enrollments.adapters import FAKE_FILE, Adapters, FakePartners, PartnerError
from coursegate.enrollments.repository import EnrollmentRepository
from coursegate.models import Enrollment, EnrollmentLock, Event, OutboundEmail, ScheduledEvent
from tests import cli, servers
from tests.conftest import bearer
from tests.courses.helpers import course_body
from tests.enrollments.conftest import COURSE, Desk, Partners

SEATS = 5
DEADLINE_S = 60.0


# --- what a batch leaves behind ------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """Everything a batch could leave behind, in the database and at the partners."""

    seats: dict[str, int]
    enrollments: frozenset[str]
    locks: frozenset[str]
    scheduled: frozenset[tuple[str, str]]
    enrollment_events: frozenset[int]
    emails: frozenset[str]
    members: frozenset[str]
    balances: tuple[tuple[str, int], ...]


async def snapshot(desk: Desk, partners: Partners) -> Snapshot:
    async with desk.database.transaction() as session:
        enrollments = (await session.scalars(select(Enrollment.id))).all()
        locks = (await session.scalars(select(EnrollmentLock.person_id))).all()
        scheduled = (await session.execute(select(ScheduledEvent))).scalars().all()
        events = (
            await session.scalars(select(Event.id).where(Event.type.like("enrollment.%")))
        ).all()
        emails = (await session.scalars(select(OutboundEmail.id))).all()
    return Snapshot(
        seats=await desk.seats(),
        enrollments=frozenset(str(e) for e in enrollments),
        locks=frozenset(str(p) for p in locks),
        scheduled=frozenset((str(s.enrollment_id), s.kind) for s in scheduled),
        enrollment_events=frozenset(int(e) for e in events),
        emails=frozenset(str(e) for e in emails),
        members=frozenset(partners.members()),
        balances=tuple(sorted(partners.balances().items())),
    )


def untouched(total: int) -> Snapshot:
    """A course of `total` seats that no assignment ever touched."""
    return Snapshot(
        seats={
            "available": total,
            "reserved": 0,
            "assigned": 0,
            "spent": 0,
            "rolled_back": 0,
            "total": total,
        },
        enrollments=frozenset(),
        locks=frozenset(),
        scheduled=frozenset(),
        enrollment_events=frozenset(),
        emails=frozenset(),
        members=frozenset(),
        balances=(),
    )


async def outcomes() -> list[dict[str, Any]]:
    """The results of every saga this process ran, oldest first."""
    runs: list[WorkflowStatus] = await DBOS.list_workflows_async(name=saga.WORKFLOW)
    return [cast("dict[str, Any]", run.output) for run in runs]


def refusal(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, str(response.json().get("error"))


# --- 1. a failure at each forward step ------------------------------------------------


@pytest.mark.parametrize(
    ("operation", "step"),
    [
        ("accounting.fund", "fund_budgets"),
        ("identity.grant", "grant_access"),
        ("mailer.invite", "confirm"),
    ],
)
async def test_partner_failure_at_a_step_undoes_the_whole_batch(
    desk: Desk, partners: Partners, operation: str, step: str
) -> None:
    await desk.create_course(seats=SEATS)
    partners.fail(operation)

    response = await desk.assign_raw(desk.new_students(3), dedup_window_days=30)

    assert refusal(response) == (502, "PROVISIONING_FAILED"), response.text
    assert step in response.json()["message"]
    assert await snapshot(desk, partners) == untouched(SEATS)
    [outcome] = await outcomes()
    assert outcome["ok"] is False
    assert outcome["step"] == step

    partners.heal()
    made = await desk.assign(SEATS, dedup_window_days=30)
    assert len(made) == SEATS, "every seat came back"
    assert (await desk.seats())["assigned"] == SEATS
    assert partners.members() == {e["person_id"] for e in made}
    assert len(partners.balances()) == SEATS


async def test_no_seats_at_reserve_leaves_nothing(desk: Desk, partners: Partners) -> None:
    await desk.create_course(seats=2)

    response = await desk.assign_raw(desk.new_students(3))

    assert refusal(response) == (409, "NO_SEATS_AVAILABLE"), response.text
    assert await snapshot(desk, partners) == untouched(2)
    [outcome] = await outcomes()
    assert outcome == {**outcome, "ok": False, "step": "reserve_seats"}

    made = await desk.assign(2)
    assert len(made) == 2, "the two seats were never held back"


async def test_enrollment_exists_at_reserve_leaves_nothing_of_the_batch(
    desk: Desk, partners: Partners
) -> None:
    await desk.create_course(seats=SEATS)
    [first] = desk.new_students(1)
    response = await desk.assign_raw([first])
    assert response.status_code == 201, response.text
    before = await snapshot(desk, partners)

    response = await desk.assign_raw([*desk.new_students(2), first])

    assert refusal(response) == (409, "ENROLLMENT_EXISTS"), response.text
    assert "students 2 " in response.json()["message"]
    assert await snapshot(desk, partners) == before
    assert (await outcomes())[-1]["step"] == "reserve_seats"
    assert len(await desk.assign(SEATS - 1)) == SEATS - 1


async def test_enrollment_exists_at_create_leaves_nothing_of_the_batch(
    desk: Desk, partners: Partners, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A racing batch took the person after this batch's check at reserve: the unique
    index refuses it at create, and the seats it reserved are released."""
    await desk.create_course(seats=SEATS)
    [first] = desk.new_students(1)
    response = await desk.assign_raw([first])
    assert response.status_code == 201, response.text
    before = await snapshot(desk, partners)

    real_blocked = EnrollmentRepository.blocked
    calls = 0

    async def blind_once(self: EnrollmentRepository, *args: Any) -> set[Any]:
        nonlocal calls
        calls += 1
        if calls == 1:  # the check at reserve misses the racing enrollment
            return set()
        return await real_blocked(self, *args)

    monkeypatch.setattr(EnrollmentRepository, "blocked", blind_once)
    response = await desk.assign_raw([*desk.new_students(2), first])
    monkeypatch.undo()

    assert refusal(response) == (409, "ENROLLMENT_EXISTS"), response.text
    assert (await outcomes())[-1]["step"] == "create_enrollments"
    assert await snapshot(desk, partners) == before
    assert len(await desk.assign(SEATS - 1)) == SEATS - 1


# --- 2. an undo that fails is retried ----------------------------------------------------


class FlakyWithdraw(FakePartners):
    """`withdraw` fails the first time it is called, then works."""

    def __init__(self, path: Path, faults: dict[str, str] | None = None) -> None:
        super().__init__(path, faults)
        self.withdraw_calls = 0

    async def withdraw(self, accounts: Sequence[str]) -> None:
        self.withdraw_calls += 1
        if self.withdraw_calls == 1:
            raise PartnerError("accounting.withdraw failed (once)")
        await super().withdraw(accounts)


async def test_a_failing_undo_is_retried_until_the_batch_is_gone(
    app: FastAPI, desk: Desk, partners: Partners
) -> None:
    flaky = FlakyWithdraw(partners.fake.path, {"identity.grant": "fail"})
    partners.fake = flaky
    adapters = Adapters(flaky, flaky, partners.invitations)
    app.state.adapters = adapters
    durable.runtime().adapters = adapters
    await desk.create_course(seats=SEATS)

    response = await desk.assign_raw(desk.new_students(2))

    assert refusal(response) == (502, "PROVISIONING_FAILED"), response.text
    assert flaky.withdraw_calls == 2, "the failed withdraw was tried again"
    assert await snapshot(desk, partners) == untouched(SEATS)
    partners.heal()
    assert len(await desk.assign(SEATS)) == SEATS


# --- 3. concurrency (PostgreSQL: SQLite serialises every writer) -------------------------


@pytest.mark.postgres_only
async def test_fifty_racing_assigns_for_ten_seats(desk: Desk, partners: Partners) -> None:
    await desk.create_course(seats=10)
    students = desk.new_students(50)
    seen: list[dict[str, int]] = []
    done = asyncio.Event()

    async def watch() -> None:
        while not done.is_set():
            seen.append(await desk.seats())
            await asyncio.sleep(0.01)

    watcher = asyncio.create_task(watch())
    try:
        responses = await asyncio.gather(*(desk.assign_raw([s]) for s in students))
    finally:
        done.set()
        await watcher

    codes = ["201" if r.status_code == 201 else refusal(r)[1] for r in responses]
    assert codes.count("201") == 10, [r.text for r in responses if r.status_code not in (201, 409)]
    assert codes.count("NO_SEATS_AVAILABLE") == 40, codes
    final = await desk.seats()
    assert final == {
        "available": 0,
        "reserved": 0,
        "assigned": 10,
        "spent": 0,
        "rolled_back": 0,
        "total": 10,
    }
    for counts in seen:
        assert min(counts.values()) >= 0, counts
        assert counts["available"] + counts["reserved"] + counts["assigned"] == 10, counts
    stored = await snapshot(desk, partners)
    assert len(stored.enrollments) == 10
    assert len(stored.balances) == 10
    assert len(stored.members) == 10


async def _race_same_student(desk: Desk, partners: Partners, *, known: bool) -> None:
    rounds = 5
    await desk.create_course(seats=3 * rounds)
    for _ in range(rounds):
        shared, a, b = desk.new_students(3)
        if known:  # the person exists already: only the saga races
            person = await desk.post(
                "/v1/people",
                {"identifiers": [{"namespace": "student_id", "value": shared["student_id"]}]},
            )
            assert person.status_code == 201, person.text
        first, second = await asyncio.gather(
            desk.assign_raw([a, shared]), desk.assign_raw([shared, b])
        )
        statuses = sorted([first.status_code, second.status_code])
        assert statuses == [201, 409], (first.text, second.text)
        loser = first if first.status_code == 409 else second
        assert refusal(loser) == (409, "ENROLLMENT_EXISTS"), loser.text
    seats = await desk.seats()
    assert seats["assigned"] == 2 * rounds
    assert seats["available"] == rounds
    assert seats["reserved"] == 0
    stored = await snapshot(desk, partners)
    assert len(stored.enrollments) == 2 * rounds
    assert len(stored.balances) == 2 * rounds
    assert len(stored.members) == 2 * rounds


@pytest.mark.postgres_only
async def test_two_racing_batches_with_the_same_student(desk: Desk, partners: Partners) -> None:
    await _race_same_student(desk, partners, known=True)


@pytest.mark.postgres_only
async def test_two_racing_batches_with_the_same_new_student(desk: Desk, partners: Partners) -> None:
    await _race_same_student(desk, partners, known=False)


# --- 4. a process killed mid-saga ----------------------------------------------------------


def _env(settings: Settings, faults: str) -> dict[str, str]:
    return {
        "COURSEGATE_DATABASE_URL": settings.resolved_database_url,
        "COURSEGATE_VAR_DIR": str(settings.var_dir),
        "COURSEGATE_FAKE_ADAPTER_FAULTS": faults,
        "COURSEGATE_LOG_LEVEL": "WARNING",
    }


def _cli(env: dict[str, str], *args: str) -> str:
    result = cli.run(env, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _fake_rows(var_dir: Path, table: str) -> int:
    path = var_dir / FAKE_FILE
    if not path.exists():
        return 0
    db = sqlite3.connect(path, timeout=30)
    try:
        count: int = db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        return count
    except sqlite3.OperationalError:  # the tables are not made yet
        return 0
    finally:
        db.close()


async def _eventually(what: str, check: Any, server: servers.Server | None = None) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            tail = server.output()[-3000:] if server else ""
            raise AssertionError(f"not within {DEADLINE_S:.0f} s: {what}\n{tail}")
        if server is not None and not server.alive():
            raise AssertionError(f"server exited while waiting for: {what}\n{server.output()}")
        await asyncio.sleep(0.2)


def _saga_steps(settings: Settings) -> tuple[list[WorkflowStatus], list[str]]:
    client = DBOSClient(
        system_database_url=sync_database_url(settings.resolved_database_url),
        dbos_system_schema=DBOS_SCHEMA,
    )
    try:
        runs = client.list_workflows(name=saga.WORKFLOW)
        steps = [
            s["function_name"] for r in runs for s in client.list_workflow_steps(r.workflow_id)
        ]
        return runs, steps
    finally:
        client.destroy()


async def _ready(server: servers.Server) -> None:
    async with httpx.AsyncClient() as http:

        async def answers() -> bool:
            try:
                return (await http.get(server.url + "/readyz", timeout=1)).status_code == 200
            except httpx.HTTPError:
                return False

        await _eventually("the server is ready", answers, server)


async def _clean(database: Database, var_dir: Path) -> bool:
    async with database.transaction() as session:
        enrollments = (await session.scalars(select(Enrollment.id))).all()
        locks = (await session.scalars(select(EnrollmentLock.person_id))).all()
    return (
        not enrollments
        and not locks
        and _fake_rows(var_dir, "budgets") == 0
        and _fake_rows(var_dir, "members") == 0
    )


def _kill(server: servers.Server) -> None:
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(timeout=10)


async def _killed_mid_saga_then_restarted(
    settings: Settings,
    database: Database,
    tmp_path: Path,
    faults: str,
    killed_when: str,
    ready_to_kill: Any,
) -> None:
    var_dir = settings.var_dir
    first = servers.start(["serve"], _env(settings, faults), tmp_path / "serve-1.log")
    pending: asyncio.Task[httpx.Response] | None = None
    try:
        await _ready(first)
        key = json.loads(_cli(_env(settings, ""), "tenants", "create", "acme", "--json"))["api_key"]
        async with httpx.AsyncClient(base_url=first.url, headers=bearer(key)) as http:
            made = await http.post("/v1/courses", json=course_body(id=COURSE))
            assert made.status_code == 201, made.text
            active = await http.post(f"/v1/courses/{COURSE}/activate")
            assert active.status_code == 200, active.text
            seats = await http.post(
                f"/v1/courses/{COURSE}/seats", json={"quantity": SEATS, "order_ref": "o-1"}
            )
            assert seats.status_code == 201, seats.text
            students = [{"student_id": f"s{n}", "email": f"s{n}@example.edu"} for n in range(3)]
            pending = asyncio.create_task(
                http.post(
                    f"/v1/courses/{COURSE}/enrollments",
                    json={"students": students, "dedup_window_days": 30},
                    timeout=DEADLINE_S * 3,
                )
            )
            await _eventually(killed_when, ready_to_kill, first)
            assert not pending.done(), "the saga was meant to hang, yet the request answered"
            _kill(first)
            with pytest.raises(httpx.HTTPError):
                await pending
    finally:
        if pending is not None and not pending.done():
            pending.cancel()
        servers.stop(first)
    assert not await _clean(database, var_dir), "the kill left a batch half-made"

    second = servers.start(["serve"], _env(settings, ""), tmp_path / "serve-2.log")
    try:
        await _ready(second)
        await _eventually(
            "the recovered saga compensated", lambda: _clean(database, var_dir), second
        )
        async with httpx.AsyncClient(base_url=second.url, headers=bearer(key)) as http:

            async def released() -> bool:
                counts = (await http.get(f"/v1/courses/{COURSE}/seats")).json()
                return bool(counts["available"] == SEATS and counts["reserved"] == 0)

            await _eventually("every seat is available again", released, second)

            def finished() -> bool:
                [status] = _saga_steps(settings)[0]
                return status.status == "SUCCESS"

            await _eventually("the recovered workflow finished", finished, second)
            [run] = _saga_steps(settings)[0]
            result = cast("dict[str, Any]", run.output)
            assert result["ok"] is False, result
            assert result["code"] == "PROVISIONING_FAILED"

            # The restarted server assigns the seats the batch had held.
            again = await http.post(
                f"/v1/courses/{COURSE}/enrollments",
                json={"students": students},
                timeout=DEADLINE_S,
            )
            assert again.status_code == 201, again.text
    finally:
        servers.stop(second)
    async with database.transaction() as session:
        events = (
            await session.scalars(select(Event.type).where(Event.type.like("enrollment.%")))
        ).all()
    assert len(events) == 3, f"only the second assignment made events: {events}"


@pytest.mark.long
async def test_killed_while_a_forward_step_hangs_compensates_after_restart(
    settings: Settings, database: Database, tmp_path: Path
) -> None:
    await _killed_mid_saga_then_restarted(
        settings,
        database,
        tmp_path,
        faults="identity.grant=stall",
        killed_when="accounting.fund ran",
        ready_to_kill=lambda: _fake_rows(settings.var_dir, "budgets") == 3,
    )


@pytest.mark.long
async def test_killed_while_an_undo_hangs_compensates_after_restart(
    settings: Settings, database: Database, tmp_path: Path
) -> None:
    def withdrawing() -> bool:
        if _fake_rows(settings.var_dir, "budgets") != 3:
            return False
        _, steps = _saga_steps(settings)
        return any(s.endswith("revoke_access") for s in steps)

    await _killed_mid_saga_then_restarted(
        settings,
        database,
        tmp_path,
        faults="identity.grant=fail,accounting.withdraw=stall",
        killed_when="the compensation reached accounting.withdraw",
        ready_to_kill=withdrawing,
    )
