"""A scheduled workflow fires once per tick, however many worker processes run."""

from __future__ import annotations

import collections
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from coursegate.config import Settings

HERE = Path(__file__).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _start_worker(
    settings: Settings, ticks: Path, executor: str, port: int, log: Path
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "COURSEGATE_DATABASE_URL": settings.resolved_database_url,
        "COURSEGATE_VAR_DIR": str(settings.var_dir),
        "COURSEGATE_EXECUTOR_ID": executor,
        "COURSEGATE_SCHEDULER_POLL_SECONDS": "0.5",
        "COURSEGATE_LOG_LEVEL": "WARNING",
        "PROBE_TICKS_FILE": str(ticks),
        "PYTHONPATH": str(HERE.parent.parent),
    }
    with log.open("wb") as stderr:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.durable.probe_worker", "--port", str(port)],
            env=env,
            cwd=HERE.parent.parent,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )


def _wait_healthy(
    port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"worker exited: {log.read_text()[-3000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("worker never became healthy")


def test_two_workers_run_each_tick_once(settings: Settings, tmp_path: Path) -> None:
    ticks = tmp_path / "ticks.log"
    ports = [_free_port(), _free_port()]
    logs = [tmp_path / f"worker-{i}.log" for i in range(2)]
    workers = [
        _start_worker(settings, ticks, f"probe-worker-{i}", port, logs[i])
        for i, port in enumerate(ports)
    ]
    try:
        for port, proc, log in zip(ports, workers, logs, strict=True):
            _wait_healthy(port, proc, log)
        time.sleep(6)
        for port, proc in zip(ports, workers, strict=True):
            assert proc.poll() is None, "a worker died during the test"
            metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2)
            assert metrics.status_code == 200
    finally:
        for proc in workers:
            proc.send_signal(signal.SIGTERM)
        for proc in workers:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    lines = ticks.read_text().splitlines() if ticks.exists() else []
    per_tick = collections.Counter(line.split()[0] for line in lines)
    assert len(per_tick) >= 3, f"too few ticks fired: {lines}"
    duplicated = {tick: n for tick, n in per_tick.items() if n > 1}
    assert duplicated == {}, f"ticks run more than once: {duplicated}"
