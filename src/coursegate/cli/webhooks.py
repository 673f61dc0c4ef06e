"""Commands about outbound webhooks: `replay deliveries`."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from coursegate.cli.common import (
    JsonOpt,
    TenantOpt,
    load_settings,
    require_tenant,
    run_db,
)
from coursegate.db import Database
from coursegate.kit.clock import SystemClock
from coursegate.kit.fields import validated
from coursegate.kit.ids import path_uuid
from coursegate.kit.secrets import SecretBox
from coursegate.webhooks.schemas import ReplayRequest
from coursegate.webhooks.service import WebhookService


def register(replay_app: typer.Typer) -> None:
    replay_app.command("deliveries")(replay_deliveries)


def replay_deliveries(
    tenant: TenantOpt,
    endpoint: Annotated[str, typer.Option("--endpoint", help="the webhook endpoint's id")],
    since: Annotated[str, typer.Option("--since", help="an RFC 3339 instant with its offset")],
    as_json: JsonOpt = False,
) -> None:
    """Queue every message since a time for an endpoint again, each with its original webhook-id
    (the API's POST /v1/webhook-endpoints/{id}/replay)."""
    settings = load_settings()

    async def work(database: Database) -> int:
        body = validated(ReplayRequest, {"since": since})
        async with database.transaction() as session:
            await require_tenant(session, tenant)
            service = WebhookService(
                session,
                SystemClock(),
                SecretBox(settings.master_keys()),
                allow_private=settings.allow_private_webhook_targets,
            )
            return await service.replay(tenant, path_uuid(endpoint), body.since)

    queued = run_db(settings, work)
    if as_json:
        typer.echo(json.dumps({"tenant": tenant, "endpoint": endpoint, "queued": queued}))
    else:
        typer.echo(f"queued {queued} messages for endpoint {endpoint}")
