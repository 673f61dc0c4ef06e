"""DBOS Transact: launch, queues, schedules, and enqueueing inside our own transaction.

Workflows are for the few long, multi-step things (sagas, connector runs,
sweeps); hot paths write rows instead, because an enqueue inside a request
roughly halves its throughput (measured, see ARCHITECTURE.md).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from dbos import DBOS, DBOSClient, DBOSConfig, EnqueueOptions, ScheduleInput, WorkflowHandle
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncSession

from coursegate import __version__
from coursegate.config import Settings, sync_database_url
from coursegate.db import Database
from coursegate.enrollments.adapters import Adapters, adapters_from_settings
from coursegate.kit.clock import Clock, SystemClock
from coursegate.kit.logs import adopt_library_logger

DBOS_SCHEMA = "dbos"
APP_NAME = "coursegate"
DEFAULT_QUEUE = "coursegate"


class Role(StrEnum):
    """What a process does: `serve` is everything in one; `api` runs no workflows."""

    SERVE = "serve"
    API = "api"
    WORKER = "worker"


ScheduledFn = Callable[[datetime, Any], Any]


@dataclass(frozen=True)
class Schedule:
    name: str
    workflow: ScheduledFn
    cron: str


@dataclass
class Registry:
    """Queues and schedules declared at import time, applied at launch."""

    queues: dict[str, int | None] = field(default_factory=lambda: {DEFAULT_QUEUE: None})
    schedules: dict[str, Schedule] = field(default_factory=dict)


REGISTRY = Registry()


def declare_queue(name: str, *, worker_concurrency: int | None = None) -> str:
    REGISTRY.queues[name] = worker_concurrency
    return name


def declare_schedule(name: str, workflow: ScheduledFn, cron: str) -> None:
    """A cron schedule (6 fields allowed: seconds first) stored by DBOS in the database.

    DBOS gives each tick the workflow id `sched-<name>-<time>`, so however many
    workers run the scheduler, a tick becomes one workflow run.
    """
    REGISTRY.schedules[name] = Schedule(name=name, workflow=workflow, cron=cron)


@dataclass
class Runtime:
    """What workflow code needs from the process that runs it."""

    settings: Settings
    database: Database
    clock: Clock
    adapters: Adapters


_runtime: Runtime | None = None


def runtime() -> Runtime:
    if _runtime is None:
        raise RuntimeError("durable execution is not launched in this process")
    return _runtime


def default_executor_id(role: Role) -> str:
    """Unique per process unless configured.

    Two processes sharing an id re-run each other's in-flight workflows; a
    process restarted with its old id recovers its own. The embedded server is
    alone on its file, so it keeps one stable id and recovers after a restart.
    """
    if role is Role.SERVE:
        return "embedded"
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def dbos_config(settings: Settings, role: Role) -> DBOSConfig:
    config: DBOSConfig = {
        "name": APP_NAME,
        "system_database_url": sync_database_url(settings.resolved_database_url),
        "executor_id": settings.executor_id or default_executor_id(role),
        # Recovery only matches the same version: pin it across processes.
        "application_version": settings.application_version or __version__,
        "dbos_system_schema": DBOS_SCHEMA,
        "scheduler_polling_interval_sec": settings.scheduler_poll_seconds,
        "notification_listener_polling_interval_sec": 1.0,
    }
    if settings.is_sqlite:
        config["sys_db_pool_size"] = 4
    return config


async def launch(
    settings: Settings,
    database: Database,
    role: Role,
    clock: Clock | None = None,
    adapters: Adapters | None = None,
) -> None:
    """Start DBOS in this process, on the calling event loop.

    Launched from inside the running loop, DBOS runs async workflows on that
    loop, so they share the application's engine and its connections.
    """
    global _runtime
    _runtime = Runtime(
        settings=settings,
        database=database,
        clock=clock or SystemClock(),
        adapters=adapters or adapters_from_settings(settings),
    )
    DBOS(config=dbos_config(settings, role))
    if role is Role.API:
        DBOS.listen_queues([])
    DBOS.launch()
    adopt_library_logger(
        "dbos", quiet_below="DEBUG" if settings.log_level.upper() == "DEBUG" else "WARNING"
    )
    for name, concurrency in REGISTRY.queues.items():
        await DBOS.register_queue_async(name, worker_concurrency=concurrency)
    if role is not Role.API and REGISTRY.schedules:
        inputs: list[ScheduleInput] = [
            {"schedule_name": s.name, "workflow_fn": s.workflow, "schedule": s.cron}
            for s in REGISTRY.schedules.values()
        ]
        DBOS.apply_schedules(inputs)


def shutdown() -> None:
    global _runtime
    DBOS.destroy(workflow_completion_timeout_sec=0)
    _runtime = None


class Enqueuer:
    """Enqueues workflows inside the caller's transaction: they run iff it commits.

    Uses a DBOS client (system database only), so a process that runs no
    workflows, such as an API process, can still start them durably.
    """

    def __init__(self, settings: Settings) -> None:
        self._client = DBOSClient(
            system_database_url=sync_database_url(settings.resolved_database_url),
            dbos_system_schema=DBOS_SCHEMA,
            application_name=APP_NAME,
            lazy=True,
        )
        self._version = settings.application_version or __version__

    async def enqueue(
        self,
        session: AsyncSession,
        workflow_name: str,
        *args: Any,
        queue: str = DEFAULT_QUEUE,
        workflow_id: str | None = None,
    ) -> str:
        options: EnqueueOptions = {
            "queue_name": queue,
            "workflow_name": workflow_name,
            "app_version": self._version,
        }
        if workflow_id is not None:
            options["workflow_id"] = workflow_id
        conn = await session.connection()

        def run(sync_conn: Connection) -> str:
            handle: WorkflowHandle[Any] = self._client.enqueue_in_transaction(
                sync_conn, options, *args
            )
            return handle.get_workflow_id()

        return await conn.run_sync(run)

    def close(self) -> None:
        self._client.destroy()
