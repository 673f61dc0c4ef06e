"""`coursegate demo`: a working setup in one command, and the commands that exercise it.

The demo learners are assigned to a course whose provider course id is the
sample completion's, so the printed steps walk the whole path: an assignment
through the provisioning saga (against the fake accounting and identity
provider), a signed completion that completes the enrollment, and the
learner's credits.

Everything is made through the services the API uses, so the demo shows the
product's own rules (validation, generated secrets encrypted under the master
key) rather than a shortcut around them. Running it again reuses what exists;
only the API key is new each time, because a key's plaintext is shown once and
cannot be read back.

The printed send command computes its signature when it runs, not when the
demo ran: a signature is only good for 300 s, and a demo is often read long
before it is tried.
"""

from __future__ import annotations

import itertools
import json
import shlex
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from coursegate.config import Settings
from coursegate.courses.repository import CourseRepository
from coursegate.courses.schemas import CourseCreate, SeatOrderCreate
from coursegate.courses.service import CourseService
from coursegate.db import Database
from coursegate.kit.clock import Clock
from coursegate.kit.errors import DomainError, NotFound, ValidationFailed, validation_details
from coursegate.kit.secrets import SecretBox, SecretStores
from coursegate.operators.service import OperatorService
from coursegate.people.repository import PeopleRepository
from coursegate.people.service import PeopleService
from coursegate.programs.repository import ProgramRepository
from coursegate.programs.schemas import ProgramCreate
from coursegate.programs.service import ProgramService
from coursegate.providers.repository import ProviderRepository
from coursegate.providers.service import NewKey, ProviderService
from coursegate.tenancy.repository import TenantRepository
from coursegate.tenancy.service import TenancyService

TENANT = "demo"
TIMEZONE = "America/Denver"
PROGRAM = "demo-earned-time"
PROGRAM_NAME = "Demo earned time"
JURISDICTION = "US_CO"
HOURS_PER_CREDIT = "6"
NAMESPACE = "us_co_doc_id"
PEOPLE = ("100001", "100002", "100003")
PROVIDER = "demo-tablet"
SCHEME = "hmac-authorization"
KEY_ID = "k1"
PROVIDER_COURSE = "fin-lit-101"
COURSE = "demo-fin-lit"
COURSE_NAME = "Financial Literacy"
SEATS = 10
COMPLETION_FILE = "demo-completion.json"
ASSIGNMENT_FILE = "demo-assignment.json"
SQLITE_PREFIX = "sqlite+aiosqlite:///"


OPERATOR_EMAIL = "admin@demo.example.org"


class DemoConflict(DomainError):
    """A demo object exists with other rules than the demo needs: reusing it would mislead."""

    code = "DEMO_CONFLICT"
    status = 409


@dataclass(frozen=True, slots=True)
class DemoSetup:
    """What exists after the setup, whether it was made now or reused."""

    api_key: str
    timezone: str
    key_id: str
    person_ids: tuple[uuid.UUID, ...]
    tenant_created: bool
    operator_password: str

    @property
    def person_id(self) -> uuid.UUID:
        """The learner the sample completion is about (the first of `PEOPLE`)."""
        return self.person_ids[0]


@dataclass(frozen=True, slots=True)
class DemoOutput:
    api_key: str
    assign_command: str
    send_command: str
    credits_command: str
    enrollments_command: str
    person_id: uuid.UUID
    completion_file: Path
    environment_pinned: bool
    """False when the database URL carries a password and so is left out of the command."""
    tenant_created: bool
    console_url: str
    operator_password: str

    def as_json(self) -> dict[str, str]:
        return {
            "api_key": self.api_key,
            "assign_command": self.assign_command,
            "send_command": self.send_command,
            "credits_command": self.credits_command,
            "enrollments_command": self.enrollments_command,
            "tenant": TENANT,
            "program": PROGRAM,
            "provider": PROVIDER,
            "course": COURSE,
            "person_id": str(self.person_id),
            "console_url": self.console_url,
            "console_organisation": TENANT,
            "console_email": OPERATOR_EMAIL,
            "console_password": self.operator_password,
        }

    def as_text(self) -> str:
        lines = [
            f"demo ready{'' if self.tenant_created else ' (reused; a new api key)'}: tenant {TENANT}, program {PROGRAM} ({HOURS_PER_CREDIT} hours per credit),",
            f"provider {PROVIDER} ({SCHEME}), people {NAMESPACE} {', '.join(PEOPLE)},",
            f"course {COURSE} ({PROVIDER}'s {PROVIDER_COURSE}) with {SEATS} seats",
            f"api key (shown once): {self.api_key}",
            f"sample completion: {self.completion_file}",
            "",
            "1. start the server, if it is not running: coursegate serve",
            "2. assign the demo learners to the course (a second time answers 409",
            "   ENROLLMENT_EXISTS: they are enrolled already):",
            f"   {self.assign_command}",
            "3. sign and send the completion (the signature is made when this runs, and is",
            "   good for 300 s); it completes the first learner's enrollment:",
            f"   {self.send_command}",
            "4. read the learner's hours and credits back:",
            f"   {self.credits_command}",
            "5. and the enrollments:",
            f"   {self.enrollments_command}",
            "",
            f"operator console: {self.console_url}",
            f"   organisation {TENANT}, email {OPERATOR_EMAIL}, password (shown once): "
            f"{self.operator_password}",
        ]
        if not self.environment_pinned:
            lines.append(
                "(run step 2 with the same COURSEGATE_DATABASE_URL: it holds a password, "
                "so it is not written out here)"
            )
        return "\n".join(lines)


async def set_up(
    database: Database, clock: Clock, box: SecretBox, stores: SecretStores
) -> DemoSetup:
    """One transaction: the demo appears complete or not at all."""
    async with database.transaction() as session:
        timezone, api_key, created = await _tenant(session, clock)
        await _program(session, clock)
        people = tuple([await _person(session, clock, value) for value in PEOPLE])
        key_id = await _provider(session, clock, box, stores)
        await _course(session, clock, today_in_zone(clock.now(), timezone))
        password = await _operator(session, clock)
    return DemoSetup(
        api_key=api_key,
        timezone=timezone,
        key_id=key_id,
        person_ids=people,
        tenant_created=created,
        operator_password=password,
    )


async def _operator(session: AsyncSession, clock: Clock) -> str:
    """An admin of the console; run again, it gets a new password (the old one was shown
    once and is not kept)."""
    operators = OperatorService(session, clock)
    try:
        await operators.find(TENANT, OPERATOR_EMAIL)
    except NotFound:
        _, password = await operators.create(TENANT, OPERATOR_EMAIL, "admin")
        return password
    _, password = await operators.reset_password(TENANT, OPERATOR_EMAIL)
    return password


async def _tenant(session: AsyncSession, clock: Clock) -> tuple[str, str, bool]:
    tenancy = TenancyService(session, clock)
    existing = await TenantRepository(session).get(TENANT)
    if existing is None:
        tenant, _, plaintext = await tenancy.create_tenant(TENANT, timezone=TIMEZONE)
        return tenant.timezone, plaintext, True
    _, plaintext = await tenancy.create_key(TENANT, name="demo key")
    return existing.timezone, plaintext, False


async def _program(session: AsyncSession, clock: Clock) -> None:
    repo = ProgramRepository(session)
    existing = await repo.get(TENANT, PROGRAM)
    if existing is not None:
        if (existing.jurisdiction, existing.identifier_namespace) != (JURISDICTION, NAMESPACE):
            raise DemoConflict(
                f"program {PROGRAM} exists with other rules than the demo's "
                f"({JURISDICTION}, {NAMESPACE}); delete the demo tenant's data to start over"
            )
        return
    try:
        body = ProgramCreate.model_validate(
            {
                "id": PROGRAM,
                "name": PROGRAM_NAME,
                "jurisdiction": JURISDICTION,
                "hours_per_credit": HOURS_PER_CREDIT,
                "identifier_namespace": NAMESPACE,
            }
        )
    except ValidationError as exc:
        raise ValidationFailed(details=validation_details(exc.errors())) from None
    await ProgramService(session, clock).create(TENANT, body)


async def _person(session: AsyncSession, clock: Clock, value: str) -> uuid.UUID:
    taken = await PeopleRepository(session).taken(TENANT, [(NAMESPACE, value)])
    if taken:
        return taken[0].person_id
    person, _ = await PeopleService(session, clock).create(
        TENANT, [(NAMESPACE, value)], name=f"Demo learner {value}"
    )
    return person.id


async def _provider(
    session: AsyncSession, clock: Clock, box: SecretBox, stores: SecretStores
) -> str:
    """The key id to sign with: `k1` on a new provider, else an active key, else a fresh one."""
    service = ProviderService(session, clock, box, stores)
    repo = ProviderRepository(session)
    existing = await repo.get(TENANT, PROVIDER)
    if existing is None:
        _, created = await service.create(TENANT, PROVIDER, PROGRAM, SCHEME, [NewKey(KEY_ID, None)])
        return created[0].row.key_id
    if (existing.scheme, existing.program_id) != (SCHEME, PROGRAM):
        raise DemoConflict(
            f"provider {PROVIDER} exists with scheme {existing.scheme} for program "
            f"{existing.program_id}; the demo needs {SCHEME} for {PROGRAM}"
        )
    keys = await repo.keys(TENANT, PROVIDER)
    active = [k for k in keys if k.retired_at is None]
    # A generated key signs anywhere; a referenced one needs its variable or file at hand.
    usable = [k for k in active if k.secret_encrypted is not None] or active
    if usable:
        return usable[0].key_id
    # Every key was retired (key ids are never reused): add the next free one.
    taken = {k.key_id for k in keys}
    key_id = next(f"k{n}" for n in itertools.count(1) if f"k{n}" not in taken)
    return (await service.add_key(TENANT, PROVIDER, NewKey(key_id, None))).row.key_id


def today_in_zone(now: datetime, timezone: str) -> date:
    return now.astimezone(ZoneInfo(timezone)).date()


async def _course(session: AsyncSession, clock: Clock, today: date) -> None:
    """An active course open from today, mapped to the sample's provider course, with
    seats from one order (ordering it again adds none)."""
    service = CourseService(session, clock)
    existing = await CourseRepository(session).get(TENANT, COURSE)
    if existing is None:
        body = CourseCreate.model_validate(
            {
                "id": COURSE,
                "name": COURSE_NAME,
                "program_id": PROGRAM,
                "start_date": today.isoformat(),
                "last_drop_date": (today + timedelta(days=14)).isoformat(),
                "end_date": (today + timedelta(days=180)).isoformat(),
                "access_period_days": 90,
                "certificate_validity_days": 365,
                "external_ids": {PROVIDER: PROVIDER_COURSE},
            }
        )
        await service.create(TENANT, body)
        await service.activate(TENANT, COURSE)
    elif existing.status != "active":
        raise DemoConflict(
            f"course {COURSE} exists and is {existing.status}; the demo needs it active"
        )
    order = SeatOrderCreate(quantity=SEATS, order_ref=f"{COURSE}-order")
    await service.order_seats(TENANT, COURSE, order)


def sample_assignment() -> bytes:
    body = {
        "identifier_namespace": NAMESPACE,
        "students": [
            {"student_id": value, "email": f"learner{value}@example.org"} for value in PEOPLE
        ],
    }
    return (json.dumps(body, indent=2) + "\n").encode()


def sample_completion(now: datetime, timezone: str) -> bytes:
    """A completion an hour old, written with the tenant's local offset as a partner would."""
    completed_at = (now - timedelta(hours=1)).astimezone(ZoneInfo(timezone))
    body: dict[str, Any] = {
        "person_id": PEOPLE[0],
        "state_code": JURISDICTION,
        "course_id": PROVIDER_COURSE,
        "course_name": COURSE_NAME,
        "content_hours": 6.5,
        "completed_at": completed_at.replace(microsecond=0).isoformat(),
    }
    return (json.dumps(body, indent=2) + "\n").encode()


def coursegate_executable() -> str:
    """The script of the interpreter running now, so the command works outside this venv too."""
    candidate = Path(sys.executable).parent / "coursegate"
    return str(candidate) if candidate.exists() else "coursegate"


def _absolute_database_url(url: str) -> str:
    """A relative SQLite path would name another file once the command runs elsewhere."""
    if url.startswith(SQLITE_PREFIX):
        path, sep, query = url[len(SQLITE_PREFIX) :].partition("?")
        if path and path != ":memory:" and not Path(path).is_absolute():
            return f"{SQLITE_PREFIX}{Path(path).resolve().as_posix()}{sep}{query}"
    return url


def pinned_environment(settings: Settings) -> tuple[list[str], bool]:
    """Variable assignments that point `sign` at this database from any directory.

    The master key lives under the var dir and the default database too, so
    both are pinned with absolute paths. A database URL that holds a password
    is never printed: then the caller's environment must supply it (second value False).
    """
    pins = [f"COURSEGATE_VAR_DIR={shlex.quote(str(settings.var_dir.resolve()))}"]
    url = settings.database_url
    if url is None:
        return pins, True
    if make_url(url).password is not None:
        return pins, False
    pins.append(f"COURSEGATE_DATABASE_URL={shlex.quote(_absolute_database_url(url))}")
    return pins, True


def inbound_path() -> str:
    return f"/v1/inbound/{TENANT}/{PROVIDER}/completions"


def send_command(
    base_url: str, executable: str, pins: Sequence[str], key_id: str, body_file: Path
) -> str:
    """curl with the header computed by `coursegate sign` in a command substitution."""
    file = str(body_file)
    sign = " ".join(
        [
            *pins,
            shlex.quote(executable),
            "sign",
            f"--tenant {TENANT}",
            f"--provider {PROVIDER}",
            f"--key {shlex.quote(key_id)}",
            "--header-only",
            shlex.quote(file),
        ]
    )
    return " ".join(
        [
            "curl -sS -w '\\n' -X POST",
            shlex.quote(base_url + inbound_path()),
            "-H 'Content-Type: application/json'",
            f'-H "$({sign})"',
            "--data-binary",
            shlex.quote("@" + file),
        ]
    )


def api_command(base_url: str, api_key: str, path: str, body_file: Path | None = None) -> str:
    """curl with the API key; a POST of the file's JSON when there is one."""
    parts = ["curl -sS -w '\\n'", "-H", shlex.quote(f"Authorization: Bearer {api_key}")]
    if body_file is not None:
        parts += [
            "-X POST -H 'Content-Type: application/json' --data-binary",
            shlex.quote("@" + str(body_file)),
        ]
    return " ".join([*parts, shlex.quote(base_url + path)])


def credits_command(base_url: str, api_key: str, person_id: uuid.UUID) -> str:
    return api_command(base_url, api_key, f"/v1/people/{person_id}/credits?program={PROGRAM}")


def describe(settings: Settings, setup: DemoSetup, base_url: str, now: datetime) -> DemoOutput:
    """Write the sample bodies under the var dir and build the commands around them."""
    base_url = base_url.rstrip("/")
    body_file = (settings.var_dir / COMPLETION_FILE).resolve()
    body_file.parent.mkdir(parents=True, exist_ok=True)
    body_file.write_bytes(sample_completion(now, setup.timezone))
    assignment_file = (settings.var_dir / ASSIGNMENT_FILE).resolve()
    assignment_file.write_bytes(sample_assignment())
    pins, pinned = pinned_environment(settings)
    key = setup.api_key
    return DemoOutput(
        api_key=key,
        assign_command=api_command(
            base_url, key, f"/v1/courses/{COURSE}/enrollments", assignment_file
        ),
        send_command=send_command(base_url, coursegate_executable(), pins, setup.key_id, body_file),
        credits_command=credits_command(base_url, key, setup.person_id),
        enrollments_command=api_command(base_url, key, f"/v1/enrollments?course={COURSE}"),
        person_id=setup.person_id,
        completion_file=body_file,
        environment_pinned=pinned,
        tenant_created=setup.tenant_created,
        console_url=f"{base_url}/console",
        operator_password=setup.operator_password,
    )
