"""Real server processes for tests: `python -m coursegate <command>` on a free loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

PROJECT = Path(__file__).parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None


def start(
    args: list[str],
    env: Mapping[str, str],
    log: Path,
    *,
    module: str = "coursegate",
    cwd: Path | None = None,
) -> Server:
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", module, *args, "--port", str(port)],
            env={**os.environ, "PYTHONPATH": str(PROJECT), **env},
            cwd=cwd or PROJECT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Server(process, port, log)


def wait_ready(server: Server, path: str = "/readyz", timeout_s: float = 30.0) -> float:
    """Seconds until `path` answered 200; fails with the server's output if it never does."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if not server.alive():
            raise AssertionError(f"server exited:\n{server.output()[-3000:]}")
        try:
            if httpx.get(server.url + path, timeout=1).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{path} never answered 200:\n{server.output()[-3000:]}")


def stop(server: Server) -> None:
    if server.alive():
        server.process.send_signal(signal.SIGTERM)
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@contextmanager
def running(
    args: list[str],
    env: Mapping[str, str],
    log: Path,
    *,
    ready_path: str = "/readyz",
    module: str = "coursegate",
    cwd: Path | None = None,
) -> Iterator[Server]:
    server = start(args, env, log, module=module, cwd=cwd)
    try:
        wait_ready(server, ready_path)
        yield server
    finally:
        stop(server)
