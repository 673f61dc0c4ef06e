"""A scheduled workflow fires once per tick, however many worker processes run."""

from __future__ import annotations

import collections
import time
from pathlib import Path

import httpx
import pytest

from coursegate.config import Settings
from tests import servers


@pytest.mark.long
def test_two_workers_run_each_tick_once(settings: Settings, tmp_path: Path) -> None:
    ticks = tmp_path / "ticks.log"
    env = {
        "COURSEGATE_DATABASE_URL": settings.resolved_database_url,
        "COURSEGATE_VAR_DIR": str(settings.var_dir),
        "COURSEGATE_SCHEDULER_POLL_SECONDS": "0.5",
        "COURSEGATE_LOG_LEVEL": "WARNING",
        "PROBE_TICKS_FILE": str(ticks),
    }
    workers = [
        servers.start(
            [],
            {**env, "COURSEGATE_EXECUTOR_ID": f"probe-worker-{i}"},
            tmp_path / f"worker-{i}.log",
            module="tests.durable.probe_worker",
        )
        for i in range(2)
    ]
    try:
        for worker in workers:
            servers.wait_ready(worker, "/healthz")
        time.sleep(6)
        for worker in workers:
            assert worker.alive(), f"a worker died during the test: {worker.output()[-2000:]}"
            assert httpx.get(f"{worker.url}/metrics", timeout=2).status_code == 200
    finally:
        for worker in workers:
            servers.stop(worker)

    lines = ticks.read_text().splitlines() if ticks.exists() else []
    per_tick = collections.Counter(line.split()[0] for line in lines)
    assert len(per_tick) >= 3, f"too few ticks fired: {lines}"
    duplicated = {tick: n for tick, n in per_tick.items() if n > 1}
    assert duplicated == {}, f"ticks run more than once: {duplicated}"
