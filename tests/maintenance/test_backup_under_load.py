"""A backup taken while a real `coursegate serve` takes signed completions, then restored."""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import uuid
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import httpx

from coursegate.config import Settings
from coursegate.db import Database
from coursegate.kit.signing import hmac_authorization_header
from tests import servers
from tests.cli import run_cli
from tests.completions.test_concurrency import PEOPLE, _setup

PATH = "/v1/inbound/acme/tablet/completions"
SENDERS = 4


def _body(person: int, course: str) -> bytes:
    return json.dumps(
        {
            "person_id": f"person-{person}",
            "state_code": "US_CO",
            "course_id": course,
            "completed_at": "2026-06-10T10:00:00Z",
            "content_hours": 1.25,
        }
    ).encode()


async def _wait_for(condition: object, what: str, timeout_s: float = 30.0) -> None:
    assert callable(condition)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def test_a_backup_under_load_restores_everything_acknowledged_before_it(
    sqlite_template: Path, tmp_path: Path
) -> None:
    var = tmp_path / "var"
    var.mkdir()
    db_file = var / "coursegate.db"
    shutil.copy(sqlite_template, db_file)
    settings = Settings(database_url=f"sqlite:///{db_file}", var_dir=var, _env_file=None)
    database = Database(settings.resolved_database_url, pool_size=1)
    try:
        secret = await _setup(database, settings)
    finally:
        await database.dispose()
    env = {
        "COURSEGATE_DATABASE_URL": settings.resolved_database_url,
        "COURSEGATE_VAR_DIR": str(var),
        "COURSEGATE_ACCESS_LOG": "false",
        "COURSEGATE_LOG_LEVEL": "WARNING",
    }
    acked: list[uuid.UUID] = []
    failures: list[str] = []
    stop = asyncio.Event()

    async def sender(client: httpx.AsyncClient, worker: int) -> None:
        n = 0
        while not stop.is_set():
            body = _body(worker % PEOPLE, f"course-{worker}-{n}")
            ts = int(datetime.now(UTC).timestamp())
            auth = hmac_authorization_header("k1", secret, "POST", PATH, ts, body)
            headers = {"Authorization": auth, "Content-Type": "application/json"}
            response = await client.post(PATH, content=body, headers=headers)
            if response.status_code == 201:
                acked.append(uuid.UUID(response.json()["completion_id"]))
            else:
                failures.append(f"{response.status_code} {response.text}")
            n += 1

    backup_file = tmp_path / "under-load.db"
    server = await asyncio.to_thread(servers.start, ["serve"], env, tmp_path / "serve.log")
    try:
        await asyncio.to_thread(servers.wait_ready, server)
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            senders = [asyncio.create_task(sender(client, w)) for w in range(SENDERS)]
            await _wait_for(lambda: len(acked) >= 40 or failures, "the first completions")
            acknowledged_before = set(acked)
            made = await asyncio.to_thread(run_cli, settings, "backup", str(backup_file))
            during = len(acked) - len(acknowledged_before)
            after_backup = len(acked)
            refused = await asyncio.to_thread(run_cli, settings, "restore", str(backup_file))
            await _wait_for(lambda: len(acked) >= after_backup + 20 or failures, "more load")
            stop.set()
            await asyncio.gather(*senders)
    finally:
        await asyncio.to_thread(servers.stop, server)

    assert not failures, failures[:3]
    assert made.returncode == 0, made.stderr
    assert during > 0, "the server kept acknowledging while the backup ran"
    assert refused.returncode == 1
    assert "SERVER_RUNNING" in refused.stderr
    with closing(sqlite3.connect(db_file)) as conn:
        live = conn.execute("SELECT count(*) FROM completions").fetchone()[0]
    assert live == len(acked)  # the refused restore touched nothing

    restored = run_cli(settings, "restore", str(backup_file))
    assert restored.returncode == 0, restored.stderr

    with closing(sqlite3.connect(db_file)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        ids = {uuid.UUID(hex=row[0]) for row in conn.execute("SELECT id FROM completions")}
        events = conn.execute(
            "SELECT count(*) FROM events WHERE type = 'completion.recorded'"
        ).fetchone()[0]
        hours = conn.execute("SELECT coalesce(sum(content_hours), 0) FROM completions").fetchone()
    assert acknowledged_before <= ids
    assert ids <= set(acked)
    assert len(ids) < len(acked)  # what came after the backup is not in it: the restore replaced
    # One commit's snapshot: every completion with the event written in its transaction.
    assert events == len(ids)
    assert hours[0] == 125 * len(ids)  # hundredths of an hour
