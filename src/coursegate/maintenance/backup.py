"""Backups of the embedded database through SQLite's online backup API, and restores.

A copy of the file while `serve` writes to it would be torn: pages from
before and after a commit, and a WAL file that belongs with it. The backup
API copies every page inside one read transaction instead, so the copy is the
database exactly as it stood at one commit, while the server goes on writing
(WAL readers do not block the writer). Everything is checked before it is
trusted: the file is SQLite, `PRAGMA integrity_check` is ok, and its schema
is one this build knows. A backup is written beside its destination and
renamed into place only once checked, so a failed run never leaves a
half-written file under the operator's name.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from coursegate import migrate

SQLITE_HEADER = b"SQLite format 3\x00"
BUSY_TIMEOUT_S = 30.0


class BackupRefused(Exception):
    """A refusal with the public code the command prints (`CODE: message`)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Written:
    path: Path
    revision: str
    size: int


def _check_source_file(path: Path, what: str) -> None:
    """Missing, unreadable and not-SQLite are told apart before SQLite gives its vaguer errors."""
    if not path.exists():
        raise BackupRefused("NOT_FOUND", f"{what} {path} does not exist")
    if not path.is_file():
        raise BackupRefused("UNREADABLE", f"{what} {path} is not a regular file")
    try:
        with path.open("rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise BackupRefused(
            "UNREADABLE", f"{what} {path} cannot be read ({exc.strerror})"
        ) from None
    if header != SQLITE_HEADER:
        raise BackupRefused("NOT_SQLITE", f"{what} {path} is not a SQLite database")


def _connect(path: Path, *, read_only: bool) -> sqlite3.Connection:
    uri = f"{path.resolve().as_uri()}?mode={'ro' if read_only else 'rwc'}"
    return sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)


def check_database(conn: sqlite3.Connection, what: str) -> str:
    """Integrity first, then the schema's revision; returns the revision."""
    try:
        rows = conn.execute("PRAGMA integrity_check").fetchall()
    except sqlite3.DatabaseError as exc:
        raise BackupRefused("CORRUPT", f"{what} is damaged ({exc})") from None
    problems = [str(row[0]) for row in rows if row[0] != "ok"]
    if problems:
        shown = "; ".join(problems[:3])
        raise BackupRefused("CORRUPT", f"{what} fails its integrity check: {shown}")
    try:
        found = conn.execute("SELECT version_num FROM alembic_version").fetchall()
    except sqlite3.DatabaseError:
        found = []
    if len(found) != 1:
        raise BackupRefused("NOT_COURSEGATE", f"{what} is not a coursegate database")
    revision = str(found[0][0])
    if not migrate.knows_revision(revision):
        raise BackupRefused(
            "AHEAD_OF_BUILD",
            f"{what} is at migration {revision}, which this build does not know "
            f"(its newest is {migrate.head_revision()}): use the build that wrote it",
        )
    return revision


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _copy_checked(database: Path, partial: Path) -> str:
    with (
        closing(_connect(database, read_only=True)) as source,
        closing(_connect(partial, read_only=False)) as copy,
    ):
        source.backup(copy)
        # One file, no WAL beside it: the backup is whole on its own.
        copy.execute("PRAGMA journal_mode=DELETE")
        # The copy is the database page for page: checking it checks what was backed up,
        # without a second full read of the live file.
        return check_database(copy, "the database")


def _refuse_same_file(database: Path, other: Path) -> None:
    """Writing a backup over the live database, or restoring it onto itself, would destroy it."""
    names = {
        database.resolve().with_name(database.name + suffix) for suffix in ("", "-wal", "-shm")
    }
    if other.resolve() in names:
        raise BackupRefused("SAME_FILE", f"{other} is the database itself")


def backup(database: Path, destination: Path, *, overwrite: bool = False) -> Written:
    """A checked, self-contained copy of `database` (a live one is fine) at `destination`."""
    _check_source_file(database, "the database")
    _refuse_same_file(database, destination)
    if destination.exists() and not overwrite:
        raise BackupRefused("ALREADY_EXISTS", f"{destination} exists (give --force to replace it)")
    if destination.is_dir():
        raise BackupRefused("UNREADABLE", f"{destination} is a directory")
    if not destination.parent.is_dir():
        raise BackupRefused("NOT_FOUND", f"the folder of {destination} does not exist")
    partial = destination.with_name(f".{destination.name}.partial-{os.getpid()}")
    try:
        try:
            revision = _copy_checked(database, partial)
        except sqlite3.DatabaseError as exc:
            raise BackupRefused("CORRUPT", f"the database is damaged ({exc})") from None
        with partial.open("rb") as handle:
            os.fsync(handle.fileno())
        os.replace(partial, destination)
        _fsync_dir(destination.parent)
    finally:
        partial.unlink(missing_ok=True)
    return Written(destination, revision, destination.stat().st_size)


def check_backup(path: Path) -> str:
    """Refuse a backup that is missing, not SQLite, damaged or from a newer build; its revision."""
    _check_source_file(path, "the backup")
    try:
        with closing(_connect(path, read_only=True)) as conn:
            return check_database(conn, f"the backup {path}")
    except sqlite3.DatabaseError as exc:
        raise BackupRefused("CORRUPT", f"the backup {path} is damaged ({exc})") from None


def _keep_aside(database: Path, aside: Path) -> Path:
    """A copy of whatever is there, unchecked: restoring is how one gets out of a damaged file.

    What SQLite cannot read at all is moved aside whole, with its WAL files.
    """
    try:
        with (
            closing(_connect(database, read_only=True)) as source,
            closing(_connect(aside, read_only=False)) as copy,
        ):
            source.backup(copy)
            copy.execute("PRAGMA journal_mode=DELETE")
    except sqlite3.DatabaseError:
        aside.unlink(missing_ok=True)
        os.replace(database, aside)
        for suffix in ("-wal", "-shm"):
            database.with_name(database.name + suffix).unlink(missing_ok=True)
    return aside


def kept_aside_name(database: Path, now: datetime) -> Path:
    return database.with_name(f"{database.name}.before-restore-{now:%Y%m%dT%H%M%SZ}")


@dataclass(frozen=True, slots=True)
class Restored:
    revision: str
    kept_aside: Path | None


def restore(backup_file: Path, database: Path, now: datetime) -> Restored:
    """Put `backup_file` back as `database`; the caller holds the database's lock exclusively.

    The database in place is first backed up beside itself, so a restore of
    the wrong file loses nothing. The pages go in through the backup API into
    the live file, not by renaming a file over it: a rename would leave the
    old database's WAL and shared-memory files next to the new one, and
    SQLite would replay the old WAL into it.
    """
    _refuse_same_file(database, backup_file)
    revision = check_backup(backup_file)
    kept: Path | None = None
    if database.exists() and database.stat().st_size > 0:
        kept = _keep_aside(database, kept_aside_name(database, now))
    database.parent.mkdir(parents=True, exist_ok=True)
    try:
        with (
            closing(_connect(backup_file, read_only=True)) as source,
            closing(_connect(database, read_only=False)) as target,
        ):
            source.backup(target)
            target.execute("PRAGMA journal_mode=WAL")
            check_database(target, "the restored database")
    except sqlite3.DatabaseError as exc:
        where = f"; the database it was replacing is kept at {kept}" if kept else ""
        raise BackupRefused(
            "RESTORE_FAILED", f"writing the database failed ({exc}){where}"
        ) from None
    return Restored(revision, kept)
