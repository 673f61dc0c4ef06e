"""The `coursegate` command run inside the test process, as a script would run it.

A cold `python -m coursegate` costs about four seconds of imports before it does
anything, and the CLI tests run hundreds of commands. Typer's runner calls the
same entry point with the same arguments, environment and standard input, and
hands back the exit code, stdout and stderr apart, as a process would. What a
command changes in this process for its own run (the environment, the
logging set-up, the garbage collector's thresholds) is put back afterwards, so
the next test sees the process as it was. A few tests still run real processes:
the README's commands and the crash drills (tests/ops, tests/enrollments).
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import structlog
from typer.testing import CliRunner

from coursegate.cli import app
from coursegate.config import Settings

# What a bare environment lacks and would change how Rich or click print.
_TERMINAL_VARIABLES = ("COLUMNS", "LINES", "TERM", "FORCE_COLOR", "NO_COLOR")
# Loggers the command's logging set-up rewires.
_LOGGERS = ("dbos", "uvicorn", "uvicorn.error", "uvicorn.access")


@dataclass(frozen=True)
class CliResult:
    """What a finished `coursegate` process leaves: its exit code and both streams."""

    returncode: int
    stdout: str
    stderr: str


def run(env: Mapping[str, str], *args: str, stdin: str | None = None) -> CliResult:
    """Run `coursegate ARGS` with exactly these COURSEGATE_ settings, as a fresh process would.

    The command runs on a thread of its own, so that its `asyncio.run` works
    whether or not the calling test is inside an event loop; the caller waits
    for it as it would wait for a process.
    """
    cleared: dict[str, str | None] = {
        name: None for name in os.environ if name.startswith("COURSEGATE_")
    }
    cleared.update(dict.fromkeys(_TERMINAL_VARIABLES))
    runner = CliRunner(env={**cleared, **env})
    outcome: list[CliResult] = []

    def invoke() -> None:
        with _process_state_restored():
            result = runner.invoke(app, list(args), input=stdin, prog_name="coursegate")
        stderr = result.stderr
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            # A process would have printed the traceback and exited 1.
            stderr += "".join(traceback.format_exception(result.exception))
        outcome.append(CliResult(result.exit_code, result.stdout, stderr))

    thread = threading.Thread(target=invoke, name="coursegate-cli")
    thread.start()
    thread.join()
    return outcome[0]


def run_cli(
    settings: Settings, *args: str, env: Mapping[str, str] | None = None, stdin: str | None = None
) -> CliResult:
    """`coursegate ARGS` against the test's database, with any further settings in `env`."""
    own = {
        "COURSEGATE_DATABASE_URL": settings.resolved_database_url,
        "COURSEGATE_VAR_DIR": str(settings.var_dir),
    }
    return run({**own, **(env or {})}, *args, stdin=stdin)


@contextmanager
def _process_state_restored() -> Iterator[None]:
    root = logging.getLogger()
    root_state = (list(root.handlers), root.level)
    loggers: dict[str, tuple[list[logging.Handler], bool, int, bool]] = {}
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        loggers[name] = (list(logger.handlers), logger.propagate, logger.level, logger.disabled)
    structlog_config: dict[str, Any] = structlog.get_config()
    thresholds = gc.get_threshold()
    frozen = gc.get_freeze_count()
    try:
        yield
    finally:
        root.handlers[:] = root_state[0]
        root.setLevel(root_state[1])
        for name, (handlers, propagate, level, disabled) in loggers.items():
            logger = logging.getLogger(name)
            logger.handlers[:] = handlers
            logger.propagate, logger.disabled = propagate, disabled
            logger.setLevel(level)
        structlog.configure(**structlog_config)
        gc.set_threshold(*thresholds)
        if frozen == 0 and gc.get_freeze_count():
            gc.unfreeze()
