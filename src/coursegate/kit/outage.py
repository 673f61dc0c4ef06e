"""Telling "the database cannot be reached" apart from a bug.

While PostgreSQL restarts, every request and every background step fails at
once. Those failures are the caller's to retry (a 503 with `Retry-After`, a
loop that tries again) and say nothing new after the first: they are logged as
one warning line each, without a traceback. Anything else a database raises (a
constraint, a syntax error, a deadlock) stays a bug: a 500 with its traceback.

What counts as unreachable, from what the drivers were seen to raise when a
server stopped, restarted or was never there:

- SQLAlchemy's `DBAPIError` with `connection_invalidated` (it judged the
  connection dead: asyncpg's `ConnectionDoesNotExistError`, admin shutdown, a
  reset socket);
- a server-side state of class 08 (connection exception) or 57P01 to 57P03
  (admin shutdown, crash shutdown, cannot connect now: still starting up), from
  asyncpg or psycopg (which DBOS uses);
- psycopg's `OperationalError` without a state (it failed before the server
  said anything: refused, unknown host, timed out);
- `ConnectionError` (refused, reset, aborted, broken pipe), and any `OSError`
  raised while connecting (`DatabaseConnectFailed`, set by `db.py`);
- SQLite's "unable to open database file" (its folder gone or unreadable).

"Database is locked" on SQLite is not among them: the 30 s busy timeout
already waited, and a 500 makes that overload visible.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import asyncpg
import psycopg
import structlog
from sqlalchemy.exc import DBAPIError

log = structlog.get_logger(__name__)

_SHUTDOWN_STATES = frozenset({"57P01", "57P02", "57P03"})
_SQLITE_UNREACHABLE = "unable to open database file"
_CHAIN_LIMIT = 16


class DatabaseConnectFailed(ConnectionError):
    """Opening a connection to the database failed at the socket (refused, unknown host,
    timed out): raised in place of the bare `OSError`, so that it cannot be mistaken for
    the failure of some other socket."""


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(seen) < _CHAIN_LIMIT:
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)
        current = (
            orig
            if isinstance(orig, BaseException) and id(orig) not in seen
            else current.__cause__ or current.__context__
        )


def _unreachable(exc: BaseException) -> bool:
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, ConnectionError):
        return True
    if isinstance(exc, asyncpg.PostgresError | psycopg.Error):
        state = getattr(exc, "sqlstate", None)
        if state is None:
            return isinstance(exc, psycopg.OperationalError)
        return state.startswith("08") or state in _SHUTDOWN_STATES
    if isinstance(exc, asyncpg.exceptions.ConnectionDoesNotExistError):
        return True
    if isinstance(exc, sqlite3.OperationalError):
        return _SQLITE_UNREACHABLE in str(exc)
    return False


def is_database_unreachable(exc: BaseException) -> bool:
    """Whether `exc`, or what it was raised from, says the database cannot be reached."""
    return any(_unreachable(cause) for cause in _chain(exc))


def warn_unreachable(where: str, exc: BaseException, **context: object) -> None:
    """One line, no traceback: the first says what the rest would repeat. The reason is the
    driver's own error, deepest in the chain, whose message carries no SQL or parameters."""
    reason = exc
    for cause in _chain(exc):
        if _unreachable(cause):
            reason = cause
    log.warning(
        "database_unavailable",
        where=where,
        error_class=type(reason).__name__,
        reason=str(reason).splitlines()[0][:200] if str(reason) else "",
        **context,
    )


def log_failure(logger: Any, event: str, exc: BaseException, **context: object) -> None:
    """A background step's failure, which its loop retries: a warning line while the
    database is down, the traceback for anything else (a bug to read)."""
    if is_database_unreachable(exc):
        warn_unreachable(event, exc, **context)
    else:
        logger.error(event, exc_info=exc, **context)
