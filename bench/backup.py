"""How long `coursegate backup` and `restore` take as the embedded database grows.

Builds a migrated SQLite file, adds filler rows (with an index, as the real
tables have) up to each size, then times the backup (online copy, integrity
check of the copy) and the restore (check of the backup, copy of the
replaced database aside, copy in, integrity check). Prints one line per size.

    .venv/bin/python bench/backup.py [MiB ...]     (default: 50 200)
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
import tempfile
import time
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

from common import machine, say
from coursegate import migrate
from coursegate.db import Database
from coursegate.maintenance import backup as backups

ROW_BYTES = 400


async def _migrated(path: Path) -> None:
    database = Database(f"sqlite+aiosqlite:///{path}", pool_size=1)
    try:
        await migrate.upgrade(database.engine)
    finally:
        await database.dispose()


def _grow(path: Path, mib: int) -> None:
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_filler (id INTEGER PRIMARY KEY, body TEXT)")
        conn.execute("CREATE INDEX IF NOT EXISTS ix_bench_filler_body ON bench_filler (body)")
        while path.stat().st_size < mib * 1024 * 1024:
            conn.executemany(
                "INSERT INTO bench_filler (body) VALUES (?)",
                ((os.urandom(ROW_BYTES // 2).hex(),) for _ in range(20_000)),
            )
            conn.commit()


def main(sizes: list[int]) -> None:
    say(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        database = root / "coursegate.db"
        asyncio.run(_migrated(database))
        for mib in sizes:
            _grow(database, mib)
            target = root / f"backup-{mib}.db"
            started = time.perf_counter()
            backups.backup(database, target)
            backup_s = time.perf_counter() - started
            started = time.perf_counter()
            backups.restore(target, database, datetime.now(UTC))
            restore_s = time.perf_counter() - started
            size = database.stat().st_size / 1024 / 1024
            say(f"{size:7.0f} MiB   backup {backup_s:6.2f} s   restore {restore_s:6.2f} s")
            for stale in root.glob("coursegate.db.before-restore-*"):
                stale.unlink()
            target.unlink()


if __name__ == "__main__":
    main([int(arg) for arg in sys.argv[1:]] or [50, 200])
