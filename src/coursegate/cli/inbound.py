"""Commands about inbound integrations: providers and keys, signing, replay, the demo."""

from __future__ import annotations

import json
import sys
import uuid
from collections import Counter
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from coursegate import demo as demo_setup
from coursegate.cli.common import (
    JsonOpt,
    TenantOpt,
    fail,
    load_settings,
    provider_service,
    require_tenant,
    run_db,
    upgrade_database,
)
from coursegate.completions.parking import ParkingService
from coursegate.completions.repository import CompletionRepository, KeySecret
from coursegate.completions.verify import KeySecrets
from coursegate.db import Database
from coursegate.kit.clock import SystemClock
from coursegate.kit.errors import DomainError, NotFound
from coursegate.kit.fields import validated
from coursegate.kit.secrets import CachedResolver, SecretBox, SecretUnavailable, default_stores
from coursegate.kit.signing import (
    DEFAULT_TOLERANCE_S,
    SignatureError,
    hmac_authorization_header,
    standard_webhook_headers,
)
from coursegate.kit.timefmt import format_instant
from coursegate.providers.repository import ProviderRepository
from coursegate.providers.schemas import KeyCreate, ProviderCreate
from coursegate.providers.service import NewKey

providers_app = typer.Typer(
    help="A tenant's providers (inbound integrations) and their signing keys.",
    no_args_is_help=True,
)
replay_app = typer.Typer(help="Replay what is waiting.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(providers_app, name="providers")
    app.add_typer(replay_app, name="replay")
    app.command()(sign)
    app.command("demo")(demo_command)


class SchemeChoice(StrEnum):
    HMAC_AUTHORIZATION = "hmac-authorization"
    STANDARD_WEBHOOKS = "standard-webhooks"


ProviderArg = Annotated[str, typer.Argument(metavar="PROVIDER_ID", help="the provider's slug")]
KeyArg = Annotated[str, typer.Argument(metavar="KEY_ID", help="the key's slug")]


@dataclass(frozen=True, slots=True)
class _KeyMade:
    key_id: str
    secret_ref: str | None
    secret: str | None

    def as_json(self) -> dict[str, str | None]:
        out: dict[str, str | None] = {"key_id": self.key_id}
        if self.secret is not None:
            out["secret"] = self.secret
        out["secret_ref"] = self.secret_ref
        return out

    def as_text(self) -> str:
        if self.secret is not None:
            return f"key {self.key_id} secret (shown once): {self.secret}"
        return f"key {self.key_id} secret from {self.secret_ref}"


@providers_app.command("create")
def providers_create(
    provider_id: ProviderArg,
    tenant: TenantOpt,
    program: Annotated[str, typer.Option("--program", help="the program its completions count to")],
    scheme: Annotated[SchemeChoice, typer.Option("--scheme", help="how its requests are signed")],
    key: Annotated[
        list[str], typer.Option("--key", help="a key id; repeat for several (rotation)")
    ],
    secret_ref: Annotated[
        list[str] | None,
        typer.Option(
            "--secret-ref",
            help="env:NAME or file:/path for the --key at the same position; "
            "keys without one get a generated secret",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a provider with its keys; generated secrets are printed once."""
    refs = secret_ref or []
    if len(refs) > len(key):
        raise typer.BadParameter(
            f"{len(refs)} secret refs for {len(key)} keys: each --secret-ref pairs with a --key",
            param_hint="--secret-ref",
        )
    settings = load_settings()
    pairs = [
        {"key_id": k, "secret_ref": refs[i] if i < len(refs) else None} for i, k in enumerate(key)
    ]

    async def work(database: Database) -> list[_KeyMade]:
        body = validated(
            ProviderCreate,
            {"id": provider_id, "program_id": program, "scheme": scheme.value, "keys": pairs},
        )
        async with database.transaction() as session:
            await require_tenant(session, tenant)
            _, created = await provider_service(session, settings).create(
                tenant,
                body.id,
                body.program_id,
                body.scheme,
                [NewKey(key_id=k.key_id, secret_ref=k.secret_ref) for k in body.keys],
            )
        return [_KeyMade(c.row.key_id, c.row.secret_ref, c.secret) for c in created]

    made = run_db(settings, work)
    if as_json:
        typer.echo(json.dumps({"provider": provider_id, "keys": [k.as_json() for k in made]}))
        return
    typer.echo(
        f"provider {provider_id} created ({scheme.value}, program {program})\n"
        f"inbound path: {_inbound_path(tenant, provider_id)}"
    )
    for k in made:
        typer.echo(k.as_text())


@providers_app.command("add-key")
def providers_add_key(
    provider_id: ProviderArg,
    key_id: KeyArg,
    tenant: TenantOpt,
    secret_ref: Annotated[
        str | None,
        typer.Option("--secret-ref", help="env:NAME or file:/path; omit to generate a secret"),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a key to a provider (rotation: the old key keeps working until retired)."""
    settings = load_settings()

    async def work(database: Database) -> _KeyMade:
        body = validated(KeyCreate, {"key_id": key_id, "secret_ref": secret_ref})
        async with database.transaction() as session:
            await require_tenant(session, tenant)
            created = await provider_service(session, settings).add_key(
                tenant, provider_id, NewKey(key_id=body.key_id, secret_ref=body.secret_ref)
            )
        return _KeyMade(created.row.key_id, created.row.secret_ref, created.secret)

    made = run_db(settings, work)
    if as_json:
        typer.echo(json.dumps({"provider": provider_id, **made.as_json()}))
    else:
        typer.echo(f"key {made.key_id} added to provider {provider_id}\n{made.as_text()}")


@providers_app.command("retire-key")
def providers_retire_key(provider_id: ProviderArg, key_id: KeyArg, tenant: TenantOpt) -> None:
    """Retire a key: requests signed with it are refused at once (retiring twice is fine)."""
    settings = load_settings()

    async def work(database: Database) -> str:
        async with database.transaction() as session:
            await require_tenant(session, tenant)
            row = await provider_service(session, settings).retire_key(tenant, provider_id, key_id)
            assert row.retired_at is not None
            return format_instant(row.retired_at)

    retired_at = run_db(settings, work)
    typer.echo(f"key {key_id} of provider {provider_id} retired at {retired_at}")


def _inbound_path(tenant: str, provider: str) -> str:
    return f"/v1/inbound/{tenant}/{provider}/completions"


class KeyRetired(DomainError):
    """Signing with a retired key would only produce requests the server refuses."""

    code = "KEY_RETIRED"
    status = 409


async def _signing_key(
    database: Database, tenant: str, provider: str, key_id: str
) -> tuple[str, KeySecret]:
    """The provider's scheme and the stored form of one of its active keys."""
    async with database.transaction() as session:
        ctx = await CompletionRepository(session).provider_context(tenant, provider)
        if ctx is None:
            raise NotFound(f"no provider {provider} in tenant {tenant}")
        found = next((k for k in ctx.keys if k.key_id == key_id), None)
        if found is not None:
            return ctx.scheme, found
        row = await ProviderRepository(session).get_key(tenant, provider, key_id)
        if row is not None and row.retired_at is not None:
            raise KeyRetired(
                f"key {key_id} of provider {provider} was retired at "
                f"{format_instant(row.retired_at)}; sign with an active key"
            )
        raise NotFound(f"provider {provider} has no key {key_id}")


def _read_body(file: str) -> bytes:
    if file == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(file).read_bytes()
    except OSError as exc:
        raise fail(f"cannot read {file}: {exc.strerror}") from None


def sign(
    file: Annotated[str, typer.Argument(metavar="FILE", help="the body to sign; - reads stdin")],
    tenant: TenantOpt,
    provider: Annotated[str, typer.Option("--provider", help="the provider's slug")],
    key: Annotated[str, typer.Option("--key", help="the id of an active key")],
    method: Annotated[str, typer.Option("--method", help="the HTTP method")] = "POST",
    path: Annotated[
        str | None,
        typer.Option("--path", help="the request path with any ?query (default: the inbound path)"),
    ] = None,
    header_only: Annotated[
        bool,
        typer.Option(
            "--header-only",
            help='print only the Authorization line, for curl -H "$(...)" (hmac only)',
        ),
    ] = False,
) -> None:
    """Print the headers that sign FILE as a provider would, as of now (good for 300 s).

    The secret itself is never printed: it is read from the database (decrypted
    with the master key) or from the secret store its reference names.
    """
    target = path or _inbound_path(tenant, provider)
    if not target.startswith("/"):
        raise typer.BadParameter("a request path starts with /", param_hint="--path")
    settings = load_settings()
    body = _read_body(file)
    scheme, stored = run_db(settings, lambda db: _signing_key(db, tenant, provider, key))
    if header_only and scheme != SchemeChoice.HMAC_AUTHORIZATION:
        raise fail(
            f"--header-only needs an hmac-authorization provider; {provider} uses {scheme}, "
            "which signs with three headers"
        )
    clock = SystemClock()
    secrets = KeySecrets(SecretBox(settings.master_keys()), CachedResolver(default_stores(), clock))
    try:
        secret = secrets.secret(stored)
    except SecretUnavailable as exc:
        raise fail(f"the secret of key {key} is unavailable: {exc}") from None
    now = clock.now()
    method = method.upper()
    try:
        if scheme == SchemeChoice.HMAC_AUTHORIZATION:
            timestamp = int(now.timestamp())
            header = hmac_authorization_header(key, secret, method, target, timestamp, body)
            lines = [f"Authorization: {header}"]
        else:
            headers = standard_webhook_headers(f"msg_{uuid.uuid4().hex}", [secret], body, now)
            lines = [f"{name}: {value}" for name, value in headers.items()]
    except SignatureError as exc:
        # Its message names the problem, never the secret (kit.signing's rule).
        raise fail(f"cannot sign with key {key}: {exc}") from None
    typer.echo("\n".join(lines))
    if not header_only:
        typer.echo(
            f"signed {method} {target} at {format_instant(now)}; good for {DEFAULT_TOLERANCE_S} s",
            err=True,
        )


REPLAY_OUTCOMES = ("accepted", "duplicate", "still_parked")


@replay_app.command("parked")
def replay_parked(tenant: TenantOpt, as_json: JsonOpt = False) -> None:
    """Replay a tenant's parked completions now, in one transaction (each outcome is audited)."""
    settings = load_settings()

    async def work(database: Database) -> list[tuple[str, str]]:
        async with database.transaction() as session:
            await require_tenant(session, tenant)
            results = await ParkingService(session, SystemClock()).replay_all(tenant)
            return [(str(r.parked.id), r.outcome) for r in results]

    results = run_db(settings, work)
    counts = Counter(o if o in REPLAY_OUTCOMES else "rejected" for _, o in results)
    summary = {name: counts[name] for name in (*REPLAY_OUTCOMES, "rejected")}
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "tenant": tenant,
                    "replayed": len(results),
                    **summary,
                    "results": [{"id": i, "outcome": o} for i, o in results],
                }
            )
        )
        return
    for parked_id, outcome in results:
        typer.echo(f"parked {parked_id}: {outcome}")
    typer.echo(
        f"replayed {len(results)}: " + " ".join(f"{name}={n}" for name, n in summary.items())
    )


def demo_command(
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
    url: Annotated[
        str | None,
        typer.Option("--url", help="the server's base URL (default http://127.0.0.1:<port>)"),
    ] = None,
) -> None:
    """Set up a demo tenant, program, people and provider; print how to send and check a completion.

    Safe to run again: what exists is reused, and a new API key is made each time.
    """
    if url is not None and not url.startswith(("http://", "https://")):
        raise typer.BadParameter("an http:// or https:// URL", param_hint="--url")
    settings = load_settings()
    if settings.env == "embedded":
        upgrade_database(settings)
    box = SecretBox(settings.master_keys())
    setup = run_db(settings, lambda db: demo_setup.set_up(db, SystemClock(), box, default_stores()))
    base_url = url or f"http://127.0.0.1:{settings.port}"
    try:
        output = demo_setup.describe(settings, setup, base_url, SystemClock().now())
    except OSError as exc:
        raise fail(f"cannot write the sample completion: {exc.strerror}") from None
    typer.echo(json.dumps(output.as_json()) if as_json else output.as_text())
