"""`coursegate pull` and `coursegate replay rejects` as a script runs them, against a
real fake partner: the summary line and the exit codes of SPEC §4."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from coursegate.config import Settings
from coursegate.db import Database
from coursegate.kit.clock import FrozenClock
from coursegate.models import Authorization
from tests.cli import CliResult, run_cli
from tests.conftest import create_tenant
from tests.connectors.conftest import SECRET_ENV, add_datapass_connector, running_run
from tests.connectors.fake_partners import DataPassFake, Fault, OneRosterFake, datapass_entry


@pytest.fixture
def fake() -> Iterator[DataPassFake]:
    with DataPassFake() as partner:
        partner.entries = [datapass_entry(n) for n in range(1, 151)]
        yield partner


@pytest.fixture
async def connector(database: Database, clock: FrozenClock, fake: DataPassFake) -> str:
    await create_tenant(database, clock, "acme")
    await create_tenant(database, clock, "globex")
    await add_datapass_connector(database, clock, fake)
    return "cnous"


def pull(settings: Settings, fake: DataPassFake | OneRosterFake, *args: str) -> CliResult:
    env = {
        SECRET_ENV: fake.client_secret,
        "COURSEGATE_ALLOW_PRIVATE_WEBHOOK_TARGETS": "true",
        "COURSEGATE_CONNECTOR_RETRY_BASE_SECONDS": "0.01",
        "COURSEGATE_CONNECTOR_TIMEOUT_SECONDS": "2",
        "COURSEGATE_LOG_LEVEL": "WARNING",
    }
    return run_cli(settings, *args, env=env)


def summary(result: CliResult) -> str:
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    return lines[0]


async def test_pull_prints_one_line_and_exits_0(
    settings: Settings, fake: DataPassFake, connector: str
) -> None:
    result = await asyncio.to_thread(pull, settings, fake, "pull", "cnous", "--tenant", "acme")
    assert result.returncode == 0, result.stderr
    assert summary(result) == (
        "pulled cnous: pages=2 created=150 skipped=0 rejected=0 watermark=2026-06-01T11:30:00.000Z"
    )
    again = await asyncio.to_thread(pull, settings, fake, "pull", "cnous", "--tenant", "acme")
    assert again.returncode == 0, again.stderr
    assert summary(again) == (
        "pulled cnous: pages=2 created=0 skipped=150 rejected=0 watermark=2026-06-01T11:30:00.000Z"
    )


async def test_dry_run_and_since_leave_the_watermark(
    settings: Settings, database: Database, fake: DataPassFake, connector: str
) -> None:
    dry = await asyncio.to_thread(
        pull, settings, fake, "pull", "cnous", "--tenant", "acme", "--dry-run"
    )
    assert summary(dry) == "pulled cnous: pages=2 created=150 skipped=0 rejected=0 watermark=none"
    since = await asyncio.to_thread(
        pull,
        settings,
        fake,
        "pull",
        "cnous",
        "--tenant",
        "acme",
        "--since",
        "2026-06-01T13:00:00+02:00",  # 11:00 UTC: entries 120 to 150
    )
    assert summary(since) == (
        "pulled cnous: pages=2 created=31 skipped=119 rejected=0 watermark=none"
    )
    async with database.transaction() as session:
        assert len((await session.scalars(select(Authorization))).all()) == 31


async def test_transient_failure_exits_2_and_permanent_exits_1(
    settings: Settings, fake: DataPassFake, connector: str
) -> None:
    fake.fail_from_offset = 100
    transient = await asyncio.to_thread(pull, settings, fake, "pull", "cnous", "--tenant", "acme")
    assert transient.returncode == 2, transient.stderr
    assert summary(transient) == (
        "pulled cnous: pages=1 created=100 skipped=0 rejected=0 watermark=none"
    )
    assert "failed: http_5xx: the partner API answered HTTP 500" in transient.stderr
    assert len([r for r in fake.at("list") if r.query.get("offset") == "100"]) == 5

    fake.fail_from_offset = None
    fake.faults["list"].append(Fault(403))
    permanent = await asyncio.to_thread(pull, settings, fake, "pull", "cnous", "--tenant", "acme")
    assert permanent.returncode == 1
    assert "failed: http_4xx: the partner API answered HTTP 403" in permanent.stderr


async def test_a_refused_connection_exits_2(
    settings: Settings, database: Database, fake: DataPassFake, connector: str
) -> None:
    fake.stop()
    result = await asyncio.to_thread(pull, settings, fake, "pull", "cnous", "--tenant", "acme")
    assert result.returncode == 2
    assert "failed: connection:" in result.stderr


async def test_a_connector_running_already_exits_2(
    settings: Settings, database: Database, clock: FrozenClock, fake: DataPassFake, connector: str
) -> None:
    async with database.transaction() as session:
        # The command runs on the real clock, so the heartbeat must look fresh then;
        # a stale one would be taken over (see the runner tests).
        session.add(running_run(clock.now(), clock.now() + timedelta(days=3650)))
    result = await asyncio.to_thread(pull, settings, fake, "pull", "cnous", "--tenant", "acme")
    assert result.returncode == 2
    assert result.stdout == ""
    assert "RUN_IN_PROGRESS: connector cnous is running already" in result.stderr
    assert fake.requests == []


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["pull", "cnous", "--tenant", "globex"], "NOT_FOUND"),
        (["pull", "cnous", "--tenant", "nobody"], "NOT_FOUND: no tenant nobody"),
        (["pull", "missing", "--tenant", "acme"], "NOT_FOUND"),
        (["pull", "cnous", "--tenant", "acme", "--since", "yesterday"], "VALIDATION_ERROR"),
        (
            ["pull", "cnous", "--tenant", "acme", "--since", "2026-06-01T11:00:00"],
            "VALIDATION_ERROR",
        ),
        (["replay", "rejects", "--tenant", "globex", "--connector", "cnous"], "NOT_FOUND"),
    ],
)
async def test_refusals_exit_1_and_touch_nothing(
    settings: Settings, fake: DataPassFake, connector: str, args: list[str], error: str
) -> None:
    result = await asyncio.to_thread(pull, settings, fake, *args)
    assert result.returncode == 1
    assert error in result.stderr
    assert fake.requests == []


async def test_replay_rejects_takes_what_a_first_run_would(
    settings: Settings, database: Database, fake: DataPassFake, connector: str
) -> None:
    fake.entries = [datapass_entry(1)]
    await asyncio.to_thread(pull, settings, fake, "pull", "cnous", "--tenant", "acme")
    undated = datapass_entry(2, validated_at=None)
    nameless = {**datapass_entry(3), "public_id": 42}
    fake.entries += [undated, nameless]
    pulled = await asyncio.to_thread(pull, settings, fake, "pull", "cnous", "--tenant", "acme")
    assert "rejected=2" in summary(pulled)

    replayed = await asyncio.to_thread(
        pull, settings, fake, "replay", "rejects", "--tenant", "acme", "--connector", "cnous"
    )
    assert replayed.returncode == 0, replayed.stderr
    assert summary(replayed) == (
        "replayed 2 rejects of cnous: created=1 resolved=1 still_rejected=1"
    )
    async with database.transaction() as session:
        external = set((await session.scalars(select(Authorization.external_id))).all())
    assert undated["public_id"] in external
    again = await asyncio.to_thread(
        pull, settings, fake, "replay", "rejects", "--tenant", "acme", "--connector", "cnous"
    )
    assert summary(again) == "replayed 1 rejects of cnous: created=0 resolved=0 still_rejected=1"
