"""`coursegate secrets rotate-master`: every tenant's stored secrets move to the new master key."""

from __future__ import annotations

import os
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from coursegate.config import ConfigurationError, Settings, parse_master_keys
from coursegate.db import Database
from coursegate.kit.clock import FrozenClock
from coursegate.kit.secrets import SecretBox, SecretUnavailable, default_stores
from coursegate.maintenance import rotation
from coursegate.maintenance.locks import hold_while_running
from coursegate.maintenance.repository import CIPHERTEXT_COLUMNS, column_name
from coursegate.models import Base, Program, ProviderKey, WebhookEndpoint
from coursegate.programs.repository import ProgramRepository
from coursegate.providers.service import NewKey, ProviderService
from coursegate.webhooks.schemas import EndpointCreate
from coursegate.webhooks.service import WebhookService
from tests.cli import run_cli
from tests.conftest import create_tenant

OLD = Fernet.generate_key()
NEW = Fernet.generate_key()
OTHER = Fernet.generate_key()


@dataclass
class Stored:
    """Every ciphertext in the database, by column and row, and the secrets they hold."""

    ciphertexts: dict[tuple[str, str], str]
    plaintexts: dict[tuple[str, str], str]


async def _ciphertexts(database: Database) -> dict[tuple[str, str], str]:
    found: dict[tuple[str, str], str] = {}
    async with database.transaction() as session:
        for column in CIPHERTEXT_COLUMNS:
            key = list(column.table.primary_key.columns)
            rows = await session.execute(select(*key, column).where(column.is_not(None)))
            for row in rows:
                found[(column_name(column), repr(tuple(row[:-1])))] = row[-1]
    return found


async def _populate(database: Database, clock: FrozenClock, key: bytes, ref: str) -> Stored:
    """Secrets of two tenants under `key`: generated provider keys, a key held by reference,
    webhook endpoints, one of them rotated so that it also has a previous secret."""
    box = SecretBox(key)
    for tenant in ("acme", "globex"):
        await create_tenant(database, clock, tenant)
        async with database.transaction() as session:
            await ProgramRepository(session).add(
                Program(
                    tenant_id=tenant,
                    id="prog",
                    name="Program",
                    jurisdiction="US_CO",
                    hours_per_credit=Decimal("6"),
                    identifier_namespace="doc",
                    created_at=clock.now(),
                )
            )
            providers = ProviderService(session, clock, box, default_stores())
            await providers.create(
                tenant,
                "tablet",
                "prog",
                "hmac-authorization",
                [NewKey("k1", None), NewKey("k2", None), NewKey("k3", ref)],
            )
            hooks = WebhookService(session, clock, box, allow_private=False)
            for n in range(2):
                made = await hooks.create(
                    tenant,
                    EndpointCreate.model_validate(
                        {"url": f"https://hooks.example.com/{n}", "event_types": ["*"]}
                    ),
                )
            await hooks.rotate_secret(tenant, made.endpoint.id)
    ciphertexts = await _ciphertexts(database)
    return Stored(ciphertexts, {k: box.decrypt(v) for k, v in ciphertexts.items()})


def _ref(settings: Settings) -> str:
    """A key held by reference: nothing of it is stored, so a rotation leaves it alone."""
    path = settings.var_dir.parent / "tablet-k3"
    path.write_text("a-secret-held-elsewhere\n")
    return f"file:{path.resolve()}"


def _env(*keys: bytes) -> dict[str, str]:
    return {"COURSEGATE_SECRET_KEY": ",".join(k.decode() for k in keys)}


def _assert_under_new_key_alone(stored: Stored, now: dict[tuple[str, str], str]) -> None:
    assert now.keys() == stored.ciphertexts.keys()
    alone = SecretBox(NEW)
    assert {k: alone.decrypt(v) for k, v in now.items()} == stored.plaintexts
    for token in now.values():
        with pytest.raises(SecretUnavailable):
            SecretBox(OLD).decrypt(token)


async def test_rotation_moves_every_tenants_secrets_to_the_new_key(
    settings: Settings, database: Database, clock: FrozenClock
) -> None:
    ref = _ref(settings)
    stored = await _populate(database, clock, OLD, ref)
    # 2 tenants times (2 generated provider keys, 2 endpoints, 1 previous secret); k3 is a reference.
    assert len(stored.ciphertexts) == 10

    result = run_cli(settings, "secrets", "rotate-master", "--batch-size", "3", env=_env(NEW, OLD))

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "provider_keys.secret_encrypted: 4 re-encrypted, 0 already under the new key",
        "webhook_endpoints.secret_encrypted: 4 re-encrypted, 0 already under the new key",
        "webhook_endpoints.previous_secret_encrypted: 2 re-encrypted, 0 already under the new key",
        "set COURSEGATE_SECRET_KEY to the new key alone and restart every process",
    ]
    _assert_under_new_key_alone(stored, await _ciphertexts(database))
    async with database.transaction() as session:
        refs = await session.scalars(
            select(ProviderKey.secret_ref).where(ProviderKey.key_id == "k3")
        )
        assert list(refs) == [ref, ref]

    again = run_cli(settings, "secrets", "rotate-master", "--json", env=_env(NEW, OLD))
    assert again.returncode == 0, again.stderr
    assert '"reencrypted": 0, "already_current": 4' in again.stdout
    assert '"complete": true' in again.stdout


async def test_an_interrupted_rotation_resumes_and_finishes(
    settings: Settings, database: Database, clock: FrozenClock
) -> None:
    stored = await _populate(database, clock, OLD, _ref(settings))
    both = SecretBox([NEW, OLD])

    async def fail_in_the_middle(batch: rotation.Batch) -> None:
        if batch.column == "webhook_endpoints.secret_encrypted":
            raise RuntimeError("the process died")

    with pytest.raises(RuntimeError, match="the process died"):
        await rotation.rotate(database, both, batch_size=2, after_batch=fail_in_the_middle)

    halfway = await _ciphertexts(database)
    moved = [k for k, v in halfway.items() if both.is_current(v)]
    # The provider keys and the first batch of endpoints were committed; the rest was not.
    assert sorted({column for column, _ in moved}) == [
        "provider_keys.secret_encrypted",
        "webhook_endpoints.secret_encrypted",
    ]
    assert len(moved) == 6
    # Meanwhile every process, holding both keys, reads every row.
    assert {k: both.decrypt(v) for k, v in halfway.items()} == stored.plaintexts

    result = run_cli(settings, "secrets", "rotate-master", env=_env(NEW, OLD))
    assert result.returncode == 0, result.stderr
    assert "provider_keys.secret_encrypted: 0 re-encrypted, 4 already under the new key" in (
        result.stdout
    )
    assert "webhook_endpoints.secret_encrypted: 2 re-encrypted, 2 already" in result.stdout
    _assert_under_new_key_alone(stored, await _ciphertexts(database))


@pytest.mark.parametrize(
    ("keys", "code", "expected"),
    [
        ((NEW, OTHER), 1, "UNDECRYPTABLE: stored secrets open under none of the configured"),
        ((OLD,), 2, "NO_NEW_KEY: COURSEGATE_SECRET_KEY holds one key"),
    ],
    ids=["wrong-old-key", "no-new-key"],
)
async def test_a_wrong_key_is_refused_and_nothing_changes(
    settings: Settings,
    database: Database,
    clock: FrozenClock,
    keys: tuple[bytes, ...],
    code: int,
    expected: str,
) -> None:
    stored = await _populate(database, clock, OLD, _ref(settings))
    result = run_cli(settings, "secrets", "rotate-master", env=_env(*keys))
    assert result.returncode == code
    assert expected in result.stderr
    assert await _ciphertexts(database) == stored.ciphertexts


async def test_a_malformed_key_is_refused_without_echoing_it(
    settings: Settings, database: Database, clock: FrozenClock
) -> None:
    stored = await _populate(database, clock, OLD, _ref(settings))
    result = run_cli(
        settings,
        "secrets",
        "rotate-master",
        env={"COURSEGATE_SECRET_KEY": f"not-a-key-at-all,{OLD.decode()}"},
    )
    assert result.returncode == 2
    assert "COURSEGATE_SECRET_KEY is not a Fernet key (key 1 of 2)" in result.stderr
    assert "not-a-key-at-all" not in result.stderr
    assert OLD.decode() not in result.stderr
    assert await _ciphertexts(database) == stored.ciphertexts


async def test_embedded_rotation_writes_the_new_key_file_and_retires_the_old(
    settings: Settings, database: Database, clock: FrozenClock
) -> None:
    generated = settings.master_key()  # the embedded key file, as `serve` makes it
    stored = await _populate(database, clock, generated, _ref(settings))

    result = run_cli(settings, "secrets", "rotate-master")

    assert result.returncode == 0, result.stderr
    assert "provider_keys.secret_encrypted: 4 re-encrypted" in result.stdout
    assert "the old key was moved to" in result.stdout
    path = settings.master_key_path
    [new] = parse_master_keys(path.read_text(), "file")
    assert new != generated
    assert path.stat().st_mode & 0o777 == 0o600
    retired = path.with_name("master.key.retired")
    assert retired.read_bytes() == generated + b"\n"
    assert retired.stat().st_mode & 0o777 == 0o600
    now = await _ciphertexts(database)
    assert {k: SecretBox(new).decrypt(v) for k, v in now.items()} == stored.plaintexts


async def test_embedded_rotation_resumes_from_a_key_file_holding_both_keys(
    settings: Settings, database: Database, clock: FrozenClock
) -> None:
    stored = await _populate(database, clock, OLD, _ref(settings))
    # Where an interrupted run stopped: the new key written first, some rows moved.
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    rotation.write_key_file(settings.master_key_path, [NEW, OLD])

    async def stop_after_first(batch: rotation.Batch) -> None:
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        await rotation.rotate(
            database, SecretBox([NEW, OLD]), batch_size=1, after_batch=stop_after_first
        )

    result = run_cli(settings, "secrets", "rotate-master")
    assert result.returncode == 0, result.stderr
    assert "provider_keys.secret_encrypted: 3 re-encrypted, 1 already" in result.stdout
    assert settings.master_key_path.read_bytes() == NEW + b"\n"
    _assert_under_new_key_alone(stored, await _ciphertexts(database))


async def test_embedded_rotation_refuses_while_a_server_holds_the_key_file(
    settings: Settings, database: Database, clock: FrozenClock
) -> None:
    generated = settings.master_key()
    stored = await _populate(database, clock, generated, _ref(settings))
    held = hold_while_running(settings)  # what `serve` takes at start
    try:
        result = run_cli(settings, "secrets", "rotate-master")
    finally:
        for fd in held:
            os.close(fd)
    assert result.returncode == 1
    assert "SERVER_RUNNING" in result.stderr
    assert settings.master_key_path.read_bytes().strip() == generated
    assert await _ciphertexts(database) == stored.ciphertexts


async def test_embedded_rotation_with_a_wrong_key_file_changes_nothing(
    settings: Settings, database: Database, clock: FrozenClock
) -> None:
    stored = await _populate(database, clock, OLD, _ref(settings))
    settings.master_key_path.parent.mkdir(parents=True, exist_ok=True)
    settings.master_key_path.write_bytes(OTHER)
    result = run_cli(settings, "secrets", "rotate-master")
    assert result.returncode == 1
    assert "UNDECRYPTABLE" in result.stderr
    assert settings.master_key_path.read_bytes() == OTHER
    assert await _ciphertexts(database) == stored.ciphertexts


def test_every_encrypted_column_is_rotated() -> None:
    encrypted = {
        f"{table.name}.{column.name}"
        for table in Base.metadata.tables.values()
        for column in table.columns
        if column.name.endswith("_encrypted")
    }
    assert encrypted == {column_name(c) for c in CIPHERTEXT_COLUMNS}
    assert WebhookEndpoint.__table__.c.secret_encrypted in CIPHERTEXT_COLUMNS


def test_master_keys_are_read_newest_first_from_a_list(tmp_path: Path) -> None:
    settings = Settings(
        secret_key=f" {NEW.decode()} , {OLD.decode()},", var_dir=tmp_path, _env_file=None
    )
    assert settings.master_keys() == (NEW, OLD)
    assert settings.master_key() == NEW
    box = SecretBox(settings.master_keys())
    old_token = SecretBox(OLD).encrypt("s")
    assert box.decrypt(old_token) == "s"
    assert not box.is_current(old_token)
    assert box.is_current(box.encrypt("t"))
    assert SecretBox(NEW).decrypt(box.rotate(old_token)) == "s"
    with pytest.raises(ConfigurationError, match="holds no master key"):
        parse_master_keys(" , \n", "COURSEGATE_SECRET_KEY")


async def test_a_secret_no_key_opens_found_mid_run_stops_it_cleanly(
    settings: Settings, database: Database, clock: FrozenClock
) -> None:
    """A process with a third key wrote after the survey: the run stops, done batches stay done."""
    stored = await _populate(database, clock, OLD, _ref(settings))
    both = SecretBox([NEW, OLD])

    async def foreign_write(batch: rotation.Batch) -> None:
        if batch.column == "provider_keys.secret_encrypted" and batch.reencrypted == 2:
            async with database.transaction() as session:
                first = select(WebhookEndpoint).order_by(
                    WebhookEndpoint.tenant_id, WebhookEndpoint.id
                )
                endpoint = (await session.scalars(first.limit(1))).one()
                endpoint.secret_encrypted = SecretBox(OTHER).encrypt("written elsewhere")

    with pytest.raises(rotation.RotationRefused) as refused:
        await rotation.rotate(database, both, batch_size=2, after_batch=foreign_write)
    assert refused.value.code == "UNDECRYPTABLE"
    now = await _ciphertexts(database)
    done = [k for k, v in now.items() if both.is_current(v)]
    assert len(done) == 4  # the provider keys, committed before the foreign write was met
    assert all(column == "provider_keys.secret_encrypted" for column, _ in done)
    assert {k: both.decrypt(now[k]) for k in done} == {k: stored.plaintexts[k] for k in done}
