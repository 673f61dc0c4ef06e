"""A `coursegate worker` process with one extra scheduled workflow, for the scheduling test.

It runs the real worker command; the probe only appends each tick it executes
to a file, so the test can count executions across processes.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime
from typing import Any

from dbos import DBOS

from coursegate import durable
from coursegate.cli import main

TICKS_FILE = os.environ["PROBE_TICKS_FILE"]


@DBOS.workflow()
async def probe_tick(scheduled_at: datetime, context: Any) -> None:
    line = f"{scheduled_at.isoformat()} {os.getpid()}\n"
    fd = os.open(TICKS_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


durable.declare_schedule("probe-every-second", probe_tick, "* * * * * *")

if __name__ == "__main__":
    main(["worker", *sys.argv[1:]])
