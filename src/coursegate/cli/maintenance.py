"""Commands on the stored data itself: `backup`, `restore`, `secrets rotate-master`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer
from cryptography.fernet import Fernet

from coursegate.cli.common import JsonOpt, fail, load_settings
from coursegate.config import Settings
from coursegate.db import Database, sqlite_path
from coursegate.kit.clock import SystemClock
from coursegate.kit.secrets import SecretBox
from coursegate.maintenance import backup as backups
from coursegate.maintenance import rotation
from coursegate.maintenance.locks import Busy, database_lock, exclusive, key_file_lock

secrets_app = typer.Typer(help="The master key of stored secrets.", no_args_is_help=True)

FileArg = Annotated[Path, typer.Argument(help="the backup file")]
POSTGRESQL_ADVICE = (
    "POSTGRESQL_DATABASE: this command works on the embedded SQLite database; back up "
    "PostgreSQL with pg_dump, or continuous archiving (WAL) for point-in-time recovery "
    "(see docs/operations.md, Backups)"
)


def register(app: typer.Typer) -> None:
    app.command("backup")(backup)
    app.command("restore")(restore)
    app.add_typer(secrets_app, name="secrets")
    secrets_app.command("rotate-master")(rotate_master)


def _embedded_file(settings: Settings) -> Path:
    path = sqlite_path(settings.resolved_database_url)
    if path is None:
        raise fail(POSTGRESQL_ADVICE)
    return path


def _key_note(settings: Settings) -> str:
    if settings.master_key_from_file:
        return (
            f"\nits stored secrets open only with the master key in {settings.master_key_path}: "
            "keep a copy of that file, apart from the backups"
        )
    return "\nits stored secrets open only with COURSEGATE_SECRET_KEY: keep that key safe"


def backup(
    file: FileArg,
    force: Annotated[bool, typer.Option("--force", help="replace FILE if it exists")] = False,
) -> None:
    """A consistent copy of the embedded database, taken while the server runs."""
    settings = load_settings()
    database = _embedded_file(settings)
    try:
        written = backups.backup(database, file, overwrite=force)
    except backups.BackupRefused as exc:
        raise fail(str(exc)) from None
    typer.echo(
        f"backup written: {written.path} (migration {written.revision}, "
        f"{written.size} bytes, integrity ok)" + _key_note(settings)
    )


def restore(file: FileArg) -> None:
    """Put a backup back as the embedded database; every server on it must be stopped."""
    settings = load_settings()
    database = _embedded_file(settings)
    lock = database_lock(settings)
    assert lock is not None  # a SQLite file has one
    try:
        with exclusive(lock):
            restored = backups.restore(file, database, SystemClock().now())
    except Busy:
        raise fail(
            f"SERVER_RUNNING: a coursegate process (serve, api or worker) is running on "
            f"{database}; stop it, then restore"
        ) from None
    except backups.BackupRefused as exc:
        raise fail(str(exc)) from None
    kept = (
        f"\nthe database it replaced is kept at {restored.kept_aside}"
        if restored.kept_aside is not None
        else ""
    )
    typer.echo(
        f"restored {file} into {database} (migration {restored.revision}, integrity ok){kept}"
        "\nstart the server: it brings an older backup up to this build's migrations"
    )


def _rotate(settings: Settings, box: SecretBox, batch_size: int) -> list[rotation.Tally]:
    async def progress(batch: rotation.Batch) -> None:
        typer.echo(f"{batch.column}: {batch.reencrypted} re-encrypted", err=True)

    async def run() -> list[rotation.Tally]:
        database = Database(settings.resolved_database_url, pool_size=2)
        try:
            return await rotation.rotate(database, box, batch_size=batch_size, after_batch=progress)
        finally:
            await database.dispose()

    try:
        return asyncio.run(run())
    except rotation.RotationRefused as exc:
        raise fail(str(exc)) from None


def _refuse_unreadable(settings: Settings, box: SecretBox) -> None:
    async def run() -> list[rotation.Tally]:
        database = Database(settings.resolved_database_url, pool_size=2)
        try:
            return await rotation.survey(database, box)
        finally:
            await database.dispose()

    unreadable = [t for t in asyncio.run(run()) if t.unreadable]
    if unreadable:
        counts = ", ".join(f"{t.column}: {t.unreadable}" for t in unreadable)
        raise fail(
            f"UNDECRYPTABLE: stored secrets open under no key of {settings.master_key_path} "
            f"({counts}); nothing was changed"
        )


def _rotate_key_file(settings: Settings, batch_size: int) -> tuple[list[rotation.Tally], str]:
    """Embedded: a new key is generated and written first, beside the old one, then the rows
    move to it, then the old key leaves the file. Each step survives an interruption."""
    path = settings.master_key_path
    lock = key_file_lock(settings)
    assert lock is not None
    try:
        with exclusive(lock):
            keys = settings.master_keys()
            if len(keys) == 1:
                _refuse_unreadable(settings, SecretBox(keys))
                keys = (Fernet.generate_key(), *keys)
                rotation.write_key_file(path, keys)
            tallies = _rotate(settings, SecretBox(keys), batch_size)
            rotation.write_key_file(path, keys[:1])
            retired = rotation.retire_keys(path, keys[1:])
    except Busy:
        raise fail(
            f"SERVER_RUNNING: a coursegate process is running with the key file {path}; "
            "stop it, rotate, start it again"
        ) from None
    return tallies, (
        f"the old key was moved to {retired}: it is needed only to restore a backup "
        "taken before this rotation"
    )


def rotate_master(
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, max=10_000, help="rows per transaction")
    ] = rotation.DEFAULT_BATCH,
    as_json: JsonOpt = False,
) -> None:
    """Re-encrypt every stored secret under the newest master key; run it again if interrupted."""
    settings = load_settings()
    if settings.master_key_from_file:
        tallies, after = _rotate_key_file(settings, batch_size)
        complete = True
    else:
        keys = settings.master_keys()
        if len(keys) == 1:
            raise fail(
                "NO_NEW_KEY: COURSEGATE_SECRET_KEY holds one key; give the new key first and "
                "the old one after it (COURSEGATE_SECRET_KEY=<new>,<old>), restart every "
                "process with that, then rotate",
                code=2,
            )
        tallies = _rotate(settings, SecretBox(keys), batch_size)
        complete = not any(t.changed for t in tallies)
        after = (
            "set COURSEGATE_SECRET_KEY to the new key alone and restart every process"
            if complete
            else "secrets were changed meanwhile under the old key: run the rotation again"
        )
    if as_json:
        typer.echo(json.dumps({"columns": [t.as_json() for t in tallies], "complete": complete}))
    else:
        for t in tallies:
            typer.echo(
                f"{t.column}: {t.reencrypted} re-encrypted, {t.current} already under the "
                f"new key" + (f", {t.changed} changed meanwhile" if t.changed else "")
            )
        typer.echo(after)
    if not complete:
        raise typer.Exit(1)
