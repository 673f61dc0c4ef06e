"""The `coursegate` command: serve, api, worker, db, tenants, keys, operators, version,
backup, restore, secrets, and the inbound commands (providers, sign, replay, demo).

Commands work on the database directly with the server's settings, through the
same services (and the same input models) as the API, so a script gets the
API's rules and error codes: a refused input is `CODE: message` on stderr and
exit 1; a configuration that cannot work is exit 2.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from coursegate import __version__, migrate
from coursegate.cli import connectors, inbound, maintenance, operators, webhooks
from coursegate.cli.common import (
    HostOpt,
    PortOpt,
    TenantOpt,
    fail,
    load_settings,
    run_db,
    upgrade_database,
)
from coursegate.db import Database
from coursegate.durable import Role
from coursegate.kit.clock import SystemClock
from coursegate.kit.ids import path_uuid
from coursegate.maintenance.locks import Busy, hold_while_running
from coursegate.tenancy.service import TenancyService

app = typer.Typer(
    help="coursegate: the integration hub of education programs.", no_args_is_help=True
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
tenants_app = typer.Typer(help="Tenants (organisations running programs).", no_args_is_help=True)
keys_app = typer.Typer(help="A tenant's admin API keys.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(tenants_app, name="tenants")
app.add_typer(keys_app, name="keys")


def _serve(role: Role | None, host: str | None, port: int | None, *, default_port: int) -> None:
    from coursegate.app import create_app
    from coursegate.kit.httpserver import HttpLimits, guarded_protocol

    settings = load_settings()
    try:
        # Held until the process ends: it is how `restore` and `rotate-master` see a server.
        hold_while_running(settings)
    except Busy:
        raise fail(
            "SERVER_LOCKED: a restore or a master key rotation is running on this database; "
            "start again when it is done"
        ) from None
    if role is Role.SERVE and settings.env == "embedded":
        # The embedded server is a one-command start: bring its file to head first.
        upgrade_database(settings)
    application = create_app(settings, role=role, api=role is not Role.WORKER)
    uvicorn.run(
        application,
        host=host or settings.host,
        port=port or (settings.port if default_port == 0 else default_port),
        log_config=None,
        access_log=False,
        server_header=False,
        http=guarded_protocol(
            HttpLimits(
                max_header_bytes=settings.http_max_header_bytes,
                request_timeout_seconds=settings.http_request_timeout_seconds,
                max_pending_requests=settings.http_max_pending_requests,
            )
        ),
        timeout_keep_alive=settings.http_keep_alive_seconds,
    )


@app.command()
def serve(host: HostOpt = None, port: PortOpt = None) -> None:
    """API, workers and scheduler in one process (the embedded default)."""
    _serve(Role.SERVE, host, port, default_port=0)


@app.command()
def api(host: HostOpt = None, port: PortOpt = None) -> None:
    """HTTP only: runs no workflows (production shape: N of these)."""
    _serve(None, host, port, default_port=0)


@app.command()
def worker(host: HostOpt = None, port: PortOpt = None) -> None:
    """Workflows and schedules, with its own /healthz, /readyz and /metrics (default port 8001)."""
    _serve(Role.WORKER, host, port, default_port=8001)


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


@app.command()
def openapi(
    output: Annotated[
        Path | None, typer.Option(help="Write here instead of standard output.")
    ] = None,
) -> None:
    """Print the API's OpenAPI description exactly as the server serves it (`make openapi`
    refreshes the copy in docs/)."""
    from coursegate.app import create_app  # the whole application: only for this command
    from coursegate.kit import contract

    application = create_app(load_settings())
    try:
        text = contract.render(application.openapi())
    finally:
        asyncio.run(application.state.database.dispose())
    if output is None:
        sys.stdout.write(text)
    elif not output.exists() or output.read_text() != text:
        output.write_text(text)
        typer.echo(f"wrote {output}")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Migrate the database to this build's head (safe to run again)."""
    settings = load_settings()
    upgrade_database(settings)
    typer.echo(f"database at {migrate.head_revision()}")


@tenants_app.command("create")
def tenants_create(
    slug: str,
    timezone: Annotated[str, typer.Option("--timezone", help="IANA timezone name")] = "UTC",
    contact_email: Annotated[str | None, typer.Option("--contact-email")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON line")] = False,
) -> None:
    """Create a tenant and print its first API key (shown once)."""
    settings = load_settings()

    async def work(database: Database) -> str:
        async with database.transaction() as session:
            _, _, plaintext = await TenancyService(session, SystemClock()).create_tenant(
                slug, timezone=timezone, contact_email=contact_email
            )
        return plaintext

    key = run_db(settings, work)
    if as_json:
        typer.echo(json.dumps({"tenant": slug, "api_key": key}))
    else:
        typer.echo(f"tenant {slug} created\napi key (shown once): {key}")


@keys_app.command("create")
def keys_create(
    tenant: TenantOpt,
    name: Annotated[str, typer.Option("--name")] = "api key",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Create another API key for a tenant (shown once)."""
    settings = load_settings()

    async def work(database: Database) -> tuple[str, str]:
        async with database.transaction() as session:
            service = TenancyService(session, SystemClock())
            await service.get_tenant(tenant)
            key, plaintext = await service.create_key(tenant, name=name)
        return str(key.id), plaintext

    key_id, plaintext = run_db(settings, work)
    if as_json:
        typer.echo(json.dumps({"tenant": tenant, "id": key_id, "api_key": plaintext}))
    else:
        typer.echo(f"key {key_id}: {plaintext}")


@keys_app.command("revoke")
def keys_revoke(key_id: str, tenant: TenantOpt) -> None:
    """Revoke an API key: it stops authenticating at once."""
    settings = load_settings()

    async def work(database: Database) -> None:
        async with database.transaction() as session:
            await TenancyService(session, SystemClock()).revoke_key(tenant, path_uuid(key_id))

    run_db(settings, work)
    typer.echo(f"key {key_id} revoked")


inbound.register(app)
webhooks.register(inbound.replay_app)
connectors.register(app, inbound.replay_app)
operators.register(app)
maintenance.register(app)


def main(argv: list[str] | None = None) -> None:
    app(args=argv if argv is not None else sys.argv[1:], prog_name="coursegate")
