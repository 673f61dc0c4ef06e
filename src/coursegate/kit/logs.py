"""Structured logs: JSON lines (or a console rendering), every record through the redactor.

Standard-library records (uvicorn, SQLAlchemy, DBOS) are routed through the
same processors, so the redaction applies to logs we do not write ourselves.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog

from coursegate.kit.redaction import redact_processor


def configure_logging(level: str = "INFO", fmt: str = "json", stream: TextIO | None = None) -> None:
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redact_processor,
    ]
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=False)
        if fmt == "console"
        else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # uvicorn's own access log prints raw query strings; ours logs the route instead.
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    adopt_library_logger("dbos", quiet_below="WARNING" if root.level > logging.DEBUG else "DEBUG")


def adopt_library_logger(name: str, quiet_below: str = "WARNING") -> None:
    """Send a library's logger through ours (and its redaction) instead of its own handler.

    DBOS installs a console handler of its own at start-up; call again after it does.
    """
    logger = logging.getLogger(name)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    logger.propagate = True
    logger.setLevel(quiet_below)
