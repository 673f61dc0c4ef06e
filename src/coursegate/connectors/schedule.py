"""Connectors on their cron schedules, as DBOS workflows.

One DBOS schedule ticks each minute; its workflow reads the enabled connectors
whose cron expression fires in that minute and starts one pull workflow for
each, with the workflow id `pull-<tenant>-<connector>-<minute>`. DBOS runs a
tick once however many workers run the scheduler, and a workflow id once
however often it is started, so a tick never pulls twice. A run's id is
derived from its workflow id: if the process dies mid-run, DBOS recovers the
workflow and the runner takes that same run over instead of being locked out
by it.

A run started by hand through the API (`POST /v1/connectors/{id}/runs`) is the
same workflow, enqueued in the request's transaction with the run it takes
over already recorded: both commit, or neither.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import structlog
from dbos import DBOS, SetWorkflowID

from coursegate import durable
from coursegate.connectors.http import RetryPolicy
from coursegate.connectors.repository import ConnectorRepository
from coursegate.connectors.runner import AlreadyRunning, Runner
from coursegate.connectors.schemas import cron_matches
from coursegate.kit.errors import NotFound
from coursegate.kit.secrets import default_stores

log = structlog.get_logger(__name__)

RUN_NAMESPACE = uuid.UUID("4f3c2a61-8e1d-4b7a-9c55-0d6f1e2b3a49")


PULL_WORKFLOW = "pull_connector"


def pull_workflow_id(tenant_id: str, connector_id: str, tick: datetime) -> str:
    return f"pull-{tenant_id}-{connector_id}-{tick:%Y%m%dT%H%MZ}"


def run_now_workflow_id(tenant_id: str, connector_id: str, run_id: uuid.UUID) -> str:
    """The pull workflow of a run started by hand through the API: one per run."""
    return f"pull-{tenant_id}-{connector_id}-run-{run_id}"


@DBOS.step()
async def due_connectors(tick: str) -> list[list[str]]:
    at = datetime.fromisoformat(tick)
    async with durable.runtime().database.transaction() as session:
        connectors = await ConnectorRepository(session).enabled()
    return [[c.tenant_id, c.id] for c in connectors if cron_matches(c.schedule, at)]


@DBOS.step(retries_allowed=False)
async def pull_step(tenant_id: str, connector_id: str, run_id: str) -> dict[str, Any]:
    rt = durable.runtime()
    runner = Runner(
        rt.database,
        rt.clock,
        default_stores(),
        rt.adapters,
        allow_private=rt.settings.allow_private_webhook_targets,
        policy=RetryPolicy.of(rt.settings),
    )
    try:
        result = await runner.run(
            tenant_id, connector_id, trigger="schedule", run_id=uuid.UUID(run_id)
        )
    except AlreadyRunning:
        # A run by hand holds the connector: this tick has nothing to add.
        log.info("connector_tick_skipped", tenant=tenant_id, connector=connector_id)
        return {"status": "skipped"}
    except NotFound:
        return {"status": "deleted"}
    log.info(
        "connector_pulled",
        tenant=tenant_id,
        connector=connector_id,
        status=result.status,
        pages=result.pages,
        created=result.created,
        rejected=result.rejected,
    )
    return {"status": result.status, "run_id": str(result.run_id)}


@DBOS.workflow(name=PULL_WORKFLOW)
async def pull_connector(tenant_id: str, connector_id: str, run_id: str) -> dict[str, Any]:
    return await pull_step(tenant_id, connector_id, run_id)


@DBOS.workflow(name="connector_ticks")
async def connector_ticks(scheduled_at: datetime, context: Any) -> int:
    due = await due_connectors(scheduled_at.isoformat())
    for tenant_id, connector_id in due:
        workflow_id = pull_workflow_id(tenant_id, connector_id, scheduled_at)
        run_id = uuid.uuid5(RUN_NAMESPACE, workflow_id)
        with SetWorkflowID(workflow_id):
            await DBOS.start_workflow_async(pull_connector, tenant_id, connector_id, str(run_id))
    return len(due)


durable.declare_schedule("connector-ticks", connector_ticks, "0 * * * * *")
