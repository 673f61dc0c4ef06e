"""Commands about operators (people who sign in to the console): create, list, disable,
reset-password. A generated password is printed once and never stored in clear."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from coursegate.cli.common import JsonOpt, TenantOpt, load_settings, require_tenant, run_db
from coursegate.db import Database
from coursegate.kit.clock import SystemClock
from coursegate.models import Operator
from coursegate.operators.service import OperatorService

operators_app = typer.Typer(
    help="Operators: people who sign in to the console.", no_args_is_help=True
)

RoleOpt = Annotated[str, typer.Option("--role", help="admin, operator or viewer")]


def register(app: typer.Typer) -> None:
    app.add_typer(operators_app, name="operators")


def _summary(operator: Operator) -> dict[str, str | None]:
    return {
        "id": str(operator.id),
        "email": operator.email,
        "role": operator.role,
        "disabled_at": operator.disabled_at.isoformat() if operator.disabled_at else None,
    }


@operators_app.command("create")
def operators_create(
    email: str, tenant: TenantOpt, role: RoleOpt, as_json: JsonOpt = False
) -> None:
    """Create an operator and print its generated password (shown once)."""
    settings = load_settings()

    async def work(database: Database) -> tuple[Operator, str]:
        async with database.transaction() as session:
            await require_tenant(session, tenant)
            return await OperatorService(session, SystemClock()).create(tenant, email, role)

    operator, password = run_db(settings, work)
    if as_json:
        typer.echo(
            json.dumps({"email": operator.email, "role": operator.role, "password": password})
        )
    else:
        typer.echo(
            f"operator {operator.email} ({operator.role}) created\npassword (shown once): {password}"
        )


@operators_app.command("list")
def operators_list(tenant: TenantOpt, as_json: JsonOpt = False) -> None:
    """List a tenant's operators."""
    settings = load_settings()

    async def work(database: Database) -> list[dict[str, str | None]]:
        async with database.transaction() as session:
            await require_tenant(session, tenant)
            return [_summary(o) for o in await OperatorService(session, SystemClock()).all(tenant)]

    rows = run_db(settings, work)
    if as_json:
        typer.echo(json.dumps({"data": rows}))
        return
    for row in rows:
        state = f"disabled {row['disabled_at']}" if row["disabled_at"] else "active"
        typer.echo(f"{row['email']}\t{row['role']}\t{state}")


@operators_app.command("disable")
def operators_disable(email: str, tenant: TenantOpt, as_json: JsonOpt = False) -> None:
    """Disable an operator: its sessions end at once and it can no longer sign in."""
    settings = load_settings()

    async def work(database: Database) -> dict[str, str | None]:
        async with database.transaction() as session:
            await require_tenant(session, tenant)
            return _summary(await OperatorService(session, SystemClock()).disable(tenant, email))

    row = run_db(settings, work)
    typer.echo(json.dumps(row) if as_json else f"operator {row['email']} disabled")


@operators_app.command("reset-password")
def operators_reset_password(email: str, tenant: TenantOpt, as_json: JsonOpt = False) -> None:
    """Give an operator a new generated password (shown once); its sessions end."""
    settings = load_settings()

    async def work(database: Database) -> tuple[Operator, str]:
        async with database.transaction() as session:
            await require_tenant(session, tenant)
            return await OperatorService(session, SystemClock()).reset_password(tenant, email)

    operator, password = run_db(settings, work)
    if as_json:
        typer.echo(
            json.dumps({"email": operator.email, "role": operator.role, "password": password})
        )
    else:
        typer.echo(f"new password for {operator.email} (shown once): {password}")
