"""Which processes are running on a database file or a key file, told by a lock they hold.

Every `serve`, `api` and `worker` process takes a shared `flock` on a lock
file beside the SQLite database (and beside the embedded master key file) and
keeps it for its lifetime. The kernel drops it when the process ends however
it ends, `kill -9` included, so a stale pid file can never make a restore
refuse, and a live server can never be missed. A restore (or a key rotation
that rewrites the key file) takes the same lock exclusively and without
waiting: it either gets the file to itself or is told a server holds it, and
a server started meanwhile refuses to start instead of reading a file being
replaced. The lock files are empty and may be left behind.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from coursegate.config import Settings
from coursegate.db import sqlite_path


class Busy(Exception):
    """Another process holds the lock; the message says who it is likely to be."""


def lock_file(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def database_lock(settings: Settings) -> Path | None:
    """The lock of the embedded database file; None on PostgreSQL, which has no such file."""
    path = sqlite_path(settings.resolved_database_url)
    return None if path is None else lock_file(path)


def key_file_lock(settings: Settings) -> Path | None:
    return lock_file(settings.master_key_path) if settings.master_key_from_file else None


def _take(path: Path, mode: int) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise Busy(str(path)) from None
    return fd


def hold_while_running(settings: Settings) -> list[int]:
    """Shared locks for a server process; never released: the process's end releases them.

    Raises Busy when a restore or a key rotation has the file to itself.
    """
    held: list[int] = []
    try:
        for path in (database_lock(settings), key_file_lock(settings)):
            if path is not None:
                held.append(_take(path, fcntl.LOCK_SH))
    except Busy:
        for fd in held:
            os.close(fd)
        raise
    return held


@contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """The file to ourselves for the block, or Busy at once if any server holds it."""
    fd = _take(path, fcntl.LOCK_EX)
    try:
        yield
    finally:
        os.close(fd)
