"""The server guard's own cost (kit/httpserver.py): the hello-world app of bench/hello.py on
uvicorn's httptools protocol and on the guarded one, loaded in turns by wrk.

    .venv/bin/python bench/http_guard.py [--rounds 5] [--duration 3]

The hello-world request is the cheapest this server answers, so it shows the guard's cost
per request at its largest share; the inbound request costs some six times as much CPU.
Rounds alternate between the two servers so a shared machine's noise falls on both alike.
Prints req/s and CPU per request of each round, and the medians.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from common import CLK_TCK, VENV_BIN, Server, machine, process_ticks, say

HELLO = Path(__file__).parent / "hello.py"


def load(server: Server, script: Path, connections: int, duration: int) -> tuple[float, float]:
    """req/s, and the server's CPU milliseconds per request."""
    ticks = process_ticks(server.pid)
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{duration}s",
            "-s",
            str(script),
            server.url + "/hello",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    cpu_s = (process_ticks(server.pid) - ticks) / CLK_TCK
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if match is None or "Non-2xx" in out:
        raise RuntimeError(f"wrk:\n{out}")
    rps = float(match.group(1))
    return rps, cpu_s * 1000 / (rps * duration)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=3, help="seconds per load")
    args = parser.parse_args()
    say(f"machine: {machine()}")
    work = Path(tempfile.mkdtemp(prefix="bench-guard-"))
    script = work / "post.lua"
    script.write_text('wrk.method = "POST"\n')
    python = str(VENV_BIN / "python")
    env = dict(os.environ)
    results: dict[tuple[str, int], list[tuple[float, float]]] = {}
    with (
        Server("plain", [python, str(HELLO), "--plain"], env, work / "plain.log") as plain,
        Server("guarded", [python, str(HELLO)], env, work / "guarded.log") as guarded,
    ):
        plain.start("/docs")
        guarded.start("/docs")
        for connections in (16, 64):
            for server in (plain, guarded):
                load(server, script, connections, 1)  # warm-up
            for _ in range(args.rounds):
                for server in (plain, guarded):
                    rps, cpu_ms = load(server, script, connections, args.duration)
                    results.setdefault((server.name, connections), []).append((rps, cpu_ms))
                    say(
                        f"{server.name:8} c={connections:<3} {rps:8.0f} req/s  {cpu_ms:.3f} ms CPU/request"
                    )
                    time.sleep(0.2)
    say()
    for connections in (16, 64):
        medians = {}
        for name in ("plain", "guarded"):
            runs = results[(name, connections)]
            medians[name] = (
                statistics.median(r for r, _ in runs),
                statistics.median(c for _, c in runs),
            )
            rps, cpu = medians[name]
            say(f"median   {name:8} c={connections:<3} {rps:8.0f} req/s  {cpu:.3f} ms CPU/request")
        ratio = medians["guarded"][0] / medians["plain"][0]
        say(f"guarded / plain c={connections}: {ratio:.1%} of the throughput")


if __name__ == "__main__":
    main()
