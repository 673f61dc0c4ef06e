"""Commands about pull connectors: `pull` (a run by hand) and `replay rejects`.

Exit codes of `pull` (SPEC §4): 0 the run succeeded, rejects included; 1 it
failed for good (a permanent error: a 4xx, a bad reply, a secret that does not
resolve) or the input was refused; 2 it failed on a transient error after its
retries, or the connector is running already — both worth trying again later.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from coursegate.app import tune_garbage_collector
from coursegate.cli.common import (
    JsonOpt,
    TenantOpt,
    fail,
    load_settings,
    require_tenant,
    run_db,
)
from coursegate.config import Settings
from coursegate.connectors import runner as runs
from coursegate.connectors.http import RetryPolicy
from coursegate.connectors.runner import AlreadyRunning, ReplayResult, Runner, RunResult
from coursegate.db import Database
from coursegate.enrollments.adapters import adapters_from_settings
from coursegate.kit.clock import SystemClock
from coursegate.kit.fields import validated
from coursegate.kit.secrets import default_stores
from coursegate.kit.timefmt import Instant

EXIT_TRANSIENT = 2


class PullOptions(BaseModel):
    since: Instant | None = None


def register(app: typer.Typer, replay_app: typer.Typer) -> None:
    app.command("pull")(pull)
    replay_app.command("rejects")(replay_rejects)


@contextmanager
def progress_bar(connector: str) -> Iterator[Callable[[runs.Progress], None] | None]:
    """A live line on a terminal (on stderr, so stdout keeps the one summary line);
    nothing when the output is a file or a pipe."""
    if not sys.stderr.isatty():
        yield None
        return
    console = Console(stderr=True)
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(f"pulling {connector}")

        def update(p: runs.Progress) -> None:
            bar.update(
                task,
                description=(
                    f"pulling {connector}: pages={p.pages} created={p.created}"
                    f" skipped={p.skipped} rejected={p.rejected}"
                ),
            )

        yield update


def runner(
    settings: Settings, database: Database, progress: Callable[[runs.Progress], None] | None = None
) -> Runner:
    return Runner(
        database,
        SystemClock(),
        default_stores(),
        adapters_from_settings(settings),
        allow_private=settings.allow_private_webhook_targets,
        policy=RetryPolicy.of(settings),
        progress=progress,
    )


def pull(
    connector: Annotated[str, typer.Argument(help="the connector's id")],
    tenant: TenantOpt,
    since: Annotated[
        str | None,
        typer.Option("--since", help="read from this RFC 3339 instant; the watermark stays"),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="read and sort everything, write nothing")
    ] = False,
) -> None:
    """Run a connector now and print one summary line."""
    settings = load_settings()

    with progress_bar(connector) as progress:

        async def work(database: Database) -> RunResult | None:
            options = validated(PullOptions, {"since": since})
            async with database.transaction() as session:
                await require_tenant(session, tenant)
            tune_garbage_collector()  # a long run of many pages, as in the server
            try:
                return await runner(settings, database, progress).run(
                    tenant, connector, trigger="manual", since=options.since, dry_run=dry_run
                )
            except AlreadyRunning:
                return None

        result = run_db(settings, work)
    if result is None:
        raise fail(f"{AlreadyRunning.code}: connector {connector} is running already", 2)
    typer.echo(result.summary())
    if result.status != "succeeded":
        code = EXIT_TRANSIENT if result.transient else 1
        raise fail(f"failed: {result.error_class}: {result.message}", code)


def replay_rejects(
    tenant: TenantOpt,
    connector: Annotated[str, typer.Option("--connector", help="the connector's id")],
    as_json: JsonOpt = False,
) -> None:
    """Try a connector's open rejects again, as a first run would take them."""
    settings = load_settings()

    async def work(database: Database) -> ReplayResult:
        async with database.transaction() as session:
            await require_tenant(session, tenant)
        return await runner(settings, database).replay_rejects(tenant, connector)

    result = run_db(settings, work)
    counts = {
        "replayed": result.replayed,
        "created": result.created,
        "resolved": result.resolved,
        "still_rejected": result.still_rejected,
    }
    if as_json:
        typer.echo(json.dumps({"tenant": tenant, "connector": connector, **counts}))
    else:
        typer.echo(
            f"replayed {result.replayed} rejects of {connector}: "
            + " ".join(f"{k}={v}" for k, v in counts.items() if k != "replayed")
        )
