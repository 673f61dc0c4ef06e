"""`coursegate backup` and `coursegate restore` on the embedded database, and what they refuse."""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from coursegate.config import Settings
from coursegate.maintenance.locks import Busy, exclusive, hold_while_running, lock_file
from tests.cli import run_cli


@pytest.fixture
def embedded(sqlite_template: Path, tmp_path: Path) -> Settings:
    var = tmp_path / "var"
    var.mkdir()
    shutil.copy(sqlite_template, var / "coursegate.db")
    return Settings(database_url=f"sqlite:///{var / 'coursegate.db'}", var_dir=var, _env_file=None)


def _db(settings: Settings) -> Path:
    return settings.var_dir / "coursegate.db"


def _query(path: Path, sql: str) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql).fetchall()


def _tenants(path: Path) -> list[str]:
    return [str(row[0]) for row in _query(path, "SELECT id FROM tenants ORDER BY id")]


def _create(settings: Settings, slug: str) -> None:
    result = run_cli(settings, "tenants", "create", slug)
    assert result.returncode == 0, result.stderr


def test_backup_then_restore_puts_the_database_back_and_keeps_the_replaced_one(
    embedded: Settings, tmp_path: Path
) -> None:
    _create(embedded, "acme")
    target = tmp_path / "nightly.db"

    made = run_cli(embedded, "backup", str(target))

    assert made.returncode == 0, made.stderr
    assert "integrity ok" in made.stdout
    assert "master.key" in made.stdout  # the reminder: the backup's secrets need that key
    assert _tenants(target) == ["acme"]
    assert _query(target, "PRAGMA journal_mode") == [("delete",)]  # one self-contained file
    assert not list(tmp_path.glob(".nightly.db.partial-*"))

    _create(embedded, "globex")
    restored = run_cli(embedded, "restore", str(target))

    assert restored.returncode == 0, restored.stderr
    assert _tenants(_db(embedded)) == ["acme"]
    assert _query(_db(embedded), "PRAGMA integrity_check") == [("ok",)]
    assert _query(_db(embedded), "PRAGMA journal_mode") == [("wal",)]
    [kept] = embedded.var_dir.glob("coursegate.db.before-restore-*")
    assert f"kept at {kept}" in restored.stdout
    assert _tenants(kept) == ["acme", "globex"]
    # The restored database is usable by the next command as it stands.
    _create(embedded, "initech")
    assert _tenants(_db(embedded)) == ["acme", "initech"]


def test_backup_refuses_to_overwrite_unless_forced(embedded: Settings, tmp_path: Path) -> None:
    target = tmp_path / "b.db"
    target.write_bytes(b"an older file the operator keeps")
    refused = run_cli(embedded, "backup", str(target))
    assert refused.returncode == 1
    assert "ALREADY_EXISTS" in refused.stderr
    assert target.read_bytes() == b"an older file the operator keeps"

    forced = run_cli(embedded, "backup", str(target), "--force")
    assert forced.returncode == 0, forced.stderr
    assert _query(target, "PRAGMA integrity_check") == [("ok",)]


def test_backup_refuses_a_missing_database_or_folder(embedded: Settings, tmp_path: Path) -> None:
    missing_folder = run_cli(embedded, "backup", str(tmp_path / "no" / "b.db"))
    assert missing_folder.returncode == 1
    assert "NOT_FOUND: the folder of" in missing_folder.stderr

    _db(embedded).unlink()
    missing = run_cli(embedded, "backup", str(tmp_path / "b.db"))
    assert missing.returncode == 1
    assert "NOT_FOUND: the database" in missing.stderr
    assert not (tmp_path / "b.db").exists()


def test_backup_refuses_a_database_from_a_newer_build(embedded: Settings, tmp_path: Path) -> None:
    with closing(sqlite3.connect(_db(embedded))) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
        conn.commit()
    result = run_cli(embedded, "backup", str(tmp_path / "b.db"))
    assert result.returncode == 1
    assert "AHEAD_OF_BUILD" in result.stderr
    assert "9999_from_the_future" in result.stderr
    assert not list(tmp_path.glob("*b.db*"))


def _corrupt(path: Path) -> None:
    """Overwrite a page in the middle of the file, as a bad disk or a torn copy would."""
    data = bytearray(path.read_bytes())
    page = 4096
    middle = (len(data) // page // 2) * page
    data[middle : middle + page] = bytes((i * 7 + 3) % 256 for i in range(page))
    path.write_bytes(bytes(data))


def _not_coursegate(path: Path) -> None:
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
        conn.commit()


def _ahead(path: Path) -> None:
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
        conn.commit()


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (None, "NOT_FOUND"),
        ("directory", "UNREADABLE"),
        ("text", "NOT_SQLITE"),
        ("empty", "NOT_SQLITE"),
        ("corrupt", "CORRUPT"),
        ("other-sqlite", "NOT_COURSEGATE"),
        ("ahead", "AHEAD_OF_BUILD"),
    ],
)
def test_restore_refuses_a_bad_backup_and_changes_nothing(
    embedded: Settings, sqlite_template: Path, tmp_path: Path, make: str | None, code: str
) -> None:
    _create(embedded, "acme")
    bad = tmp_path / "bad.db"
    if make == "directory":
        bad.mkdir()
    elif make == "text":
        bad.write_text("id,name\n1,acme\n")
    elif make == "empty":
        bad.write_bytes(b"")
    elif make == "corrupt":
        shutil.copy(sqlite_template, bad)
        _corrupt(bad)
    elif make == "other-sqlite":
        _not_coursegate(bad)
    elif make == "ahead":
        shutil.copy(sqlite_template, bad)
        _ahead(bad)
    before = _db(embedded).read_bytes()

    result = run_cli(embedded, "restore", str(bad))

    assert result.returncode == 1
    assert result.stderr.startswith(f"{code}: "), result.stderr
    assert "Traceback" not in result.stderr
    assert _db(embedded).read_bytes() == before
    assert not list(embedded.var_dir.glob("*before-restore*"))


def test_both_refuse_a_postgresql_database_and_say_what_to_use(tmp_path: Path) -> None:
    settings = Settings(
        database_url="postgresql://postgres@127.0.0.1:5432/test",
        var_dir=tmp_path / "var",
        _env_file=None,
    )
    backup_file = tmp_path / "b.db"
    for command in ("backup", "restore"):
        result = run_cli(settings, command, str(backup_file))
        assert result.returncode == 1
        assert result.stderr.startswith("POSTGRESQL_DATABASE: ")
        assert "pg_dump" in result.stderr
        assert "docs/operations.md" in result.stderr
    assert not backup_file.exists()


def test_restore_refuses_while_a_server_holds_the_database(
    embedded: Settings, tmp_path: Path
) -> None:
    _create(embedded, "acme")
    target = tmp_path / "b.db"
    assert run_cli(embedded, "backup", str(target)).returncode == 0
    _create(embedded, "globex")
    held = hold_while_running(embedded)  # what every serve, api and worker takes at start
    try:
        result = run_cli(embedded, "restore", str(target))
    finally:
        for fd in held:
            os.close(fd)
    assert result.returncode == 1
    assert "SERVER_RUNNING" in result.stderr
    assert _tenants(_db(embedded)) == ["acme", "globex"]


def test_a_server_cannot_start_while_a_restore_has_the_database(embedded: Settings) -> None:
    with exclusive(lock_file(_db(embedded))), pytest.raises(Busy):
        hold_while_running(embedded)
    # Released with the restore: a server starts again.
    held = hold_while_running(embedded)
    try:
        assert len(held) == 2  # the database and the key file
    finally:
        for fd in held:
            os.close(fd)


def test_restore_onto_a_new_machine_creates_the_database(
    embedded: Settings, tmp_path: Path
) -> None:
    _create(embedded, "acme")
    target = tmp_path / "b.db"
    assert run_cli(embedded, "backup", str(target)).returncode == 0
    fresh = tmp_path / "elsewhere" / "var"
    settings = Settings(
        database_url=f"sqlite:///{fresh / 'coursegate.db'}", var_dir=fresh, _env_file=None
    )
    result = run_cli(settings, "restore", str(target))
    assert result.returncode == 0, result.stderr
    assert "kept at" not in result.stdout
    assert _tenants(fresh / "coursegate.db") == ["acme"]


def test_backup_refuses_a_damaged_database_and_writes_nothing(
    embedded: Settings, tmp_path: Path
) -> None:
    _corrupt(_db(embedded))
    result = run_cli(embedded, "backup", str(tmp_path / "b.db"))
    assert result.returncode == 1
    assert result.stderr.startswith("CORRUPT: the database"), result.stderr
    assert not list(tmp_path.glob("*b.db*"))


def test_neither_command_will_write_the_database_over_itself(embedded: Settings) -> None:
    _create(embedded, "acme")
    before = _db(embedded).read_bytes()
    for args in (("backup", str(_db(embedded)), "--force"), ("restore", str(_db(embedded)))):
        result = run_cli(embedded, *args)
        assert result.returncode == 1
        assert result.stderr.startswith("SAME_FILE: "), result.stderr
    wal = _db(embedded).with_name("coursegate.db-wal")
    assert run_cli(embedded, "backup", str(wal), "--force").stderr.startswith("SAME_FILE: ")
    assert _db(embedded).read_bytes() == before
    assert _tenants(_db(embedded)) == ["acme"]


def test_serve_refuses_to_start_during_a_restore(embedded: Settings) -> None:
    with socket.socket() as taken:
        # Were the lock ignored, the server would fail on this port rather than run on.
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        with exclusive(lock_file(_db(embedded))):
            result = run_cli(embedded, "serve", "--port", port)
    assert result.returncode == 1
    assert result.stderr.startswith("SERVER_LOCKED: "), result.stderr
