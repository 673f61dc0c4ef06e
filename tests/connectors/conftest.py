"""What the connector tests share: a fake DataPass partner on loopback, a connector aimed
at it, waits that are recorded instead of waited, and a run row as another process would
have left it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime

import pytest

from coursegate.connectors.schemas import ConnectorCreate
from coursegate.connectors.service import ConnectorService
from coursegate.db import Database
from coursegate.kit.clock import FrozenClock
from coursegate.kit.secrets import EnvSecretStore, SecretStores
from coursegate.models import ConnectorRun
from tests.connectors.fake_partners import DataPassFake

DEFINITION = "api_particulier_cnous"
SECRET_ENV = "CG_TEST_DATAPASS_SECRET"


class Sleeps:
    """Records the waits instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def fake() -> Iterator[DataPassFake]:
    with DataPassFake() as partner:
        yield partner


def partner_stores(fake: DataPassFake) -> SecretStores:
    """Secret stores in which `env:<SECRET_ENV>` is the fake partner's client secret."""
    return SecretStores({"env": EnvSecretStore({SECRET_ENV: fake.client_secret})})


async def add_datapass_connector(
    database: Database,
    clock: FrozenClock,
    fake: DataPassFake,
    *,
    tenant_id: str = "acme",
    connector_id: str = "cnous",
    schedule: str | None = None,
    stores: SecretStores | None = None,
) -> None:
    """Through the service the API uses, private targets allowed (the fake is on loopback)."""
    body = ConnectorCreate.model_validate(
        {
            "id": connector_id,
            "kind": "datapass",
            **({"schedule": schedule} if schedule is not None else {}),
            "config": {
                "auth_url": fake.auth_url,
                "api_base_url": fake.api_base_url,
                "client_id": fake.client_id,
                "client_secret_ref": f"env:{SECRET_ENV}",
                "definition_id": DEFINITION,
            },
        }
    )
    async with database.transaction() as session:
        service = ConnectorService(
            session, clock, stores or partner_stores(fake), allow_private=True
        )
        await service.create(tenant_id, body)


def running_run(
    started: datetime,
    heartbeat: datetime,
    *,
    run_id: uuid.UUID | None = None,
    tenant_id: str = "acme",
    connector_id: str = "cnous",
) -> ConnectorRun:
    """A run still marked running, as a process busy (or dead) elsewhere left it."""
    return ConnectorRun(
        tenant_id=tenant_id,
        id=run_id or uuid.uuid4(),
        connector_id=connector_id,
        trigger="schedule",
        status="running",
        since=None,
        dry_run=False,
        started_at=started,
        heartbeat_at=heartbeat,
        ended_at=None,
        pages=0,
        created=0,
        skipped=0,
        rejected=0,
        watermark=None,
    )
