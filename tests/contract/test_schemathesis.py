"""schemathesis against a real `coursegate api` process, on SQLite and on PostgreSQL.

Every default check, every phase (examples, coverage, fuzzing, stateful), with a tenant's
API key; `positive_data_acceptance` is replaced by the same check minus the refusals that
tests/contract/hooks.py declares, each with its reason. The run is sized to stay near a
minute per database on a loaded 2-core machine (docs/api-contract.md).
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from coursegate.config import Settings
from coursegate.db import Database
from coursegate.kit.clock import FrozenClock
from tests import servers
from tests.conftest import create_tenant
from tests.servers import PROJECT as PROJECT_ROOT

MAX_EXAMPLES = 7
SEED = 20261205
"""Fixed, so a failure replays exactly; change it to explore further by hand."""
TIMEOUT_S = 240


@pytest.mark.long
async def test_schemathesis_finds_no_failure(
    settings: Settings, database: Database, clock: FrozenClock, tmp_path: Path
) -> None:
    key = await create_tenant(database, clock, "acme")
    env = {
        "COURSEGATE_DATABASE_URL": settings.resolved_database_url,
        "COURSEGATE_VAR_DIR": str(settings.var_dir),
        "COURSEGATE_ACCESS_LOG": "false",
        "COURSEGATE_LOG_LEVEL": "WARNING",
    }
    server = await asyncio.to_thread(servers.start, ["api"], env, tmp_path / "api.log")
    try:
        await asyncio.to_thread(servers.wait_ready, server)
        started = time.monotonic()
        result = await asyncio.to_thread(_run, server.url, key, tmp_path)
        took = time.monotonic() - started
    finally:
        await asyncio.to_thread(servers.stop, server)
    output = result.stdout + result.stderr
    failures = output[output.find("= FAILURES =") :]
    assert result.returncode == 0, f"{failures[:20000]}\n\nserver:\n{server.output()[-3000:]}"
    # The run did reach the server and every phase ran: not a vacuous pass.
    generated = re.search(r"(\d+) generated, (\d+) passed", output)
    assert generated, output[-4000:]
    assert int(generated.group(1)) >= 1000, generated.group(0)
    for phase in ("Coverage", "Fuzzing", "Stateful"):
        assert f"✅ {phase}" in output, output[-4000:]
    print(f"schemathesis: {generated.group(0)} in {took:.1f} s")


def _run(url: str, key: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(Path(sys.executable).parent / "schemathesis"),
            "run",
            f"{url}/openapi.json",
            "--header",
            f"Authorization: Bearer {key}",
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--seed",
            str(SEED),
            # U+0000 is refused in every text (PostgreSQL cannot store it): a rule the
            # description does not state as a pattern on each string, so none is generated.
            "--generation-allow-x00",
            "false",
            "--generation-database",
            "none",
            "--no-color",
        ],
        env={
            **os.environ,
            "SCHEMATHESIS_HOOKS": "tests.contract.hooks",
            "PYTHONPATH": str(PROJECT_ROOT),
        },
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
