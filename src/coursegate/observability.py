"""Process-wide observability set-up: logs and, when configured, Sentry."""

from __future__ import annotations

from typing import Any

from coursegate.config import Settings
from coursegate.kit.logs import configure_logging
from coursegate.kit.redaction import scrub


def _scrub_event(event: Any, _hint: Any) -> Any:
    """Sentry gets the same redaction as the logs: request headers and data included."""
    return scrub(event)


def setup(settings: Settings) -> None:
    configure_logging(settings.log_level, settings.log_format)
    if settings.sentry_dsn is not None:
        import sentry_sdk

        sentry_sdk.init(
            dsn=settings.sentry_dsn.get_secret_value(),
            environment=str(settings.env),
            send_default_pii=False,
            before_send=_scrub_event,
        )
