"""Connectors' rules: a configuration valid for its kind, partner URLs that may be
called, secrets named by a reference that resolves, and a strict cron schedule.

Only references are stored and returned; the secret behind one is resolved at
save time to catch a typo, and again when a run needs it.

A run started now is recorded and its durable workflow enqueued in the
caller's transaction, so either both exist or neither does.
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from coursegate.connectors.repository import ConnectorRepository, RosterRepository
from coursegate.connectors.runner import HELD, record_start, source_for
from coursegate.connectors.schedule import PULL_WORKFLOW, run_now_workflow_id
from coursegate.connectors.schemas import (
    CONFIG_MODELS,
    URL_FIELDS,
    ConnectorCreate,
    ConnectorPatch,
)
from coursegate.connectors.source import Context
from coursegate.durable import Enqueuer
from coursegate.enrollments.adapters import Adapters
from coursegate.kit.clock import Clock
from coursegate.kit.errors import (
    AlreadyExists,
    DomainError,
    NotFound,
    ValidationFailed,
    validation_details,
)
from coursegate.kit.ids import uuid7
from coursegate.kit.netguard import validate_webhook_url
from coursegate.kit.secrets import SecretStores, SecretUnavailable
from coursegate.models import Connector, ConnectorRun

MANUAL = "manual"
"""The trigger of a run started by hand, by `coursegate pull` or through the API."""


class RunNotHeld(DomainError):
    code = "RUN_NOT_HELD"
    status = 409


class ConnectorService:
    def __init__(
        self, session: AsyncSession, clock: Clock, stores: SecretStores, *, allow_private: bool
    ) -> None:
        self.session = session
        self.repo = ConnectorRepository(session)
        self.clock = clock
        self.stores = stores
        self.allow_private = allow_private

    async def create(self, tenant_id: str, body: ConnectorCreate) -> Connector:
        config = await self._check_config(tenant_id, body.kind, body.config)
        if await self.repo.get(tenant_id, body.id) is not None:
            raise AlreadyExists(f"connector {body.id} exists")
        now = self.clock.now()
        connector = Connector(
            tenant_id=tenant_id,
            id=body.id,
            kind=body.kind,
            schedule=body.schedule,
            config=config,
            enabled=True,
            watermark=None,
            watermarks={},
            created_at=now,
            updated_at=now,
        )
        try:
            await self.repo.add(connector)
        except IntegrityError:
            # A concurrent request created it between the check and the insert.
            raise AlreadyExists(f"connector {body.id} exists") from None
        return connector

    async def get(self, tenant_id: str, connector_id: str) -> Connector:
        connector = await self.repo.get(tenant_id, connector_id)
        if connector is None:
            raise NotFound()
        return connector

    async def update(self, tenant_id: str, connector_id: str, patch: ConnectorPatch) -> Connector:
        connector = await self.get(tenant_id, connector_id)
        changes: dict[str, Any] = patch.model_dump(exclude_unset=True)
        if "config" in changes:
            changes["config"] = await self._check_config(
                tenant_id, connector.kind, changes["config"]
            )
        changed = {k: v for k, v in changes.items() if getattr(connector, k) != v}
        if not changed:
            return connector
        for name, value in changed.items():
            setattr(connector, name, value)
        connector.updated_at = self.clock.now()
        await self.repo.flush()
        return connector

    async def run_now(self, tenant_id: str, connector_id: str, enqueuer: Enqueuer) -> ConnectorRun:
        """Start a run as `coursegate pull` does, on a worker: the run is recorded
        `running` (trigger `manual`) and its durable pull workflow enqueued, both in this
        transaction; the workflow takes that run over when a worker picks it up.
        NotFound for an unknown connector; AlreadyRunning (`RUN_IN_PROGRESS`), with
        nothing recorded or enqueued, while a run of the connector is in progress."""
        connector = await self.get(tenant_id, connector_id)
        run_id = uuid7()
        await record_start(
            self.repo,
            connector,
            run_id,
            trigger=MANUAL,
            since=None,
            dry_run=False,
            now=self.clock.now(),
        )
        await enqueuer.enqueue(
            self.session,
            PULL_WORKFLOW,
            tenant_id,
            connector_id,
            str(run_id),
            workflow_id=run_now_workflow_id(tenant_id, connector_id, run_id),
        )
        run = await self.repo.get_run(tenant_id, run_id)
        assert run is not None
        return run

    async def settle_held(
        self,
        tenant_id: str,
        connector_id: str,
        run_id: uuid.UUID,
        adapters: Adapters,
        *,
        confirm: bool,
        by: str,
    ) -> ConnectorRun:
        """A person's answer to a held run: `confirm` cancels what it withdrew (those still
        live), otherwise nothing is canceled and the marks are forgotten. Either way the
        run ends `succeeded`, its message saying who decided what. 409 `RUN_NOT_HELD` for a
        run that is not waiting (answered already, or never held)."""
        connector = await self.get(tenant_id, connector_id)
        run = await self.repo.get_run(tenant_id, run_id)
        if run is None or run.connector_id != connector_id:
            raise NotFound()
        if run.status != HELD:
            raise RunNotHeld(f"run {run_id} is {run.status}, not held")
        source = source_for(connector.kind, dict(connector.config))
        now = self.clock.now()
        context = Context(
            session=self.session,
            tenant_id=tenant_id,
            connector_id=connector_id,
            clock=self.clock,
            adapters=adapters,
            now=now,
            run_id=run_id,
        )
        if confirm:
            held_back = len(await RosterRepository(self.session).withdrawn_live(tenant_id, run_id))
            await source.settle(context, force=True)
            message = f"{held_back} cancellations confirmed by {by}"
        else:
            await source.discard(context)
            message = f"cancellations discarded by {by}"
        run.status = "succeeded"
        run.message = message[:512]
        await self.repo.flush()
        return run

    async def delete(self, tenant_id: str, connector_id: str) -> None:
        await self.repo.delete(await self.get(tenant_id, connector_id))

    async def _check_config(self, tenant_id: str, kind: str, raw: dict[str, Any]) -> dict[str, Any]:
        """The configuration as stored, or ValidationFailed on `config.<field>`."""
        try:
            model = CONFIG_MODELS[kind].model_validate(raw)
        except ValidationError as exc:
            details = validation_details(exc.errors())
            for detail in details:
                detail["field"] = f"config.{detail['field']}"
            raise ValidationFailed(details=details) from None
        config = model.model_dump()
        for name in URL_FIELDS[kind]:
            try:
                validate_webhook_url(config[name], allow_private=self.allow_private)
            except ValidationFailed as exc:
                detail = (exc.details or [{}])[0]
                raise ValidationFailed.field(
                    f"config.{name}",
                    str(detail.get("constraint", "invalid")),
                    detail.get("message") or exc.message,
                ) from None
        try:
            self.stores.resolve(config["client_secret_ref"])
        except SecretUnavailable:
            raise ValidationFailed.field(
                "config.client_secret_ref",
                "invalid",
                "the secret store cannot resolve this reference",
            ) from None
        class_map: dict[str, str] = config.get("class_map", {})
        known = await self.repo.existing_course_ids(tenant_id, set(class_map.values()))
        for sourced_id, course_id in class_map.items():
            if course_id not in known:
                raise ValidationFailed.field(
                    f"config.class_map.{sourced_id}", "invalid", "no such course"
                )
        return config
