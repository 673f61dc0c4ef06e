"""Re-encrypting every stored secret under a new master key, in batches, resumable.

Each batch is its own short transaction, so the API keeps serving while a
large table is rotated, and a run that dies halfway has lost nothing: the
rows it did are under the new key, which every process already accepts, and
the next run skips them and does the rest. Before anything is written, a
survey reads every ciphertext and refuses the whole run if any of them opens
under none of the configured keys: a mistyped old key must change nothing.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Column
from sqlalchemy.ext.asyncio import AsyncSession

from coursegate.db import Database
from coursegate.kit.secrets import SecretBox, SecretUnavailable
from coursegate.maintenance.repository import (
    CIPHERTEXT_COLUMNS,
    CiphertextRepository,
    RowKey,
    column_name,
)

DEFAULT_BATCH = 500


class RotationRefused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass
class Tally:
    """What one column held and what became of it."""

    column: str
    reencrypted: int = 0
    current: int = 0
    """Already under the newest key (done by an earlier, interrupted run, or written since)."""
    unreadable: int = 0
    changed: int = 0
    """Rewritten by another process while this run was at it; a further run will see them."""
    pending: int = 0
    """Found by a survey: under an old key, to be re-encrypted."""

    def as_json(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "reencrypted": self.reencrypted,
            "already_current": self.current,
            "changed_meanwhile": self.changed,
        }


@dataclass(frozen=True, slots=True)
class Batch:
    """Progress after a committed batch: the column, and how many it has re-encrypted so far."""

    column: str
    reencrypted: int


AfterBatch = Callable[[Batch], Awaitable[None]]


async def rotate_batch(
    session: AsyncSession,
    box: SecretBox,
    column: Column[Any],
    after: RowKey | None,
    limit: int,
    tally: Tally,
) -> RowKey | None:
    """One batch of one column; the key of its last row, or None when the column is done."""
    repo = CiphertextRepository(session)
    rows = await repo.page(column, after, limit)
    for key, token in rows:
        if box.is_current(token):
            tally.current += 1
            continue
        try:
            rotated = box.rotate(token)
        except SecretUnavailable:
            raise RotationRefused(
                "UNDECRYPTABLE",
                f"a secret in {tally.column} written since the survey opens under none of the "
                "configured keys; the batches before it are done: fix the keys and run again",
            ) from None
        if await repo.replace(column, key, token, rotated):
            tally.reencrypted += 1
        else:
            tally.changed += 1
    return rows[-1][0] if len(rows) == limit else None


async def survey_batch(
    session: AsyncSession,
    box: SecretBox,
    column: Column[Any],
    after: RowKey | None,
    limit: int,
    tally: Tally,
) -> RowKey | None:
    """Read only: counts what is current, what needs doing and what no key opens."""
    rows = await CiphertextRepository(session).page(column, after, limit)
    for _, token in rows:
        if box.is_current(token):
            tally.current += 1
        else:
            try:
                box.decrypt(token)
            except SecretUnavailable:
                tally.unreadable += 1
            else:
                tally.pending += 1
    return rows[-1][0] if len(rows) == limit else None


Step = Callable[
    [AsyncSession, SecretBox, Column[Any], RowKey | None, int, Tally], Awaitable[RowKey | None]
]


async def _each_batch(
    database: Database,
    box: SecretBox,
    step: Step,
    batch_size: int,
    after_batch: AfterBatch | None,
) -> list[Tally]:
    tallies: list[Tally] = []
    for column in CIPHERTEXT_COLUMNS:
        tally = Tally(column_name(column))
        tallies.append(tally)
        after: RowKey | None = None
        while True:
            async with database.transaction() as session:
                after = await step(session, box, column, after, batch_size, tally)
            if after_batch is not None:
                await after_batch(Batch(tally.column, tally.reencrypted))
            if after is None:
                break
    return tallies


async def survey(
    database: Database, box: SecretBox, *, batch_size: int = DEFAULT_BATCH
) -> list[Tally]:
    """Per column: how many are current, how many are pending, how many no key opens."""
    return await _each_batch(database, box, survey_batch, batch_size, None)


async def rotate(
    database: Database,
    box: SecretBox,
    *,
    batch_size: int = DEFAULT_BATCH,
    after_batch: AfterBatch | None = None,
) -> list[Tally]:
    """Every tenant's stored secrets under the box's newest key; refuses, changing nothing,
    if any of them opens under none of its keys."""
    found = await survey(database, box, batch_size=batch_size)
    unreadable = [t for t in found if t.unreadable]
    if unreadable:
        counts = ", ".join(f"{t.column}: {t.unreadable}" for t in unreadable)
        raise RotationRefused(
            "UNDECRYPTABLE",
            f"stored secrets open under none of the configured master keys ({counts}); "
            "the old key is wrong or missing. Nothing was changed",
        )
    return await _each_batch(database, box, rotate_batch, batch_size, after_batch)


def write_key_file(path: Path, keys: Sequence[bytes]) -> None:
    """Replace the key file whole (newest first), so a crash leaves the old file or the new one."""
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(b"\n".join(keys) + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def retire_keys(path: Path, keys: Sequence[bytes]) -> Path:
    """Keep retired keys apart from the live file: backups older than the rotation need them."""
    retired = path.with_name(path.name + ".retired")
    fd = os.open(retired, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "ab") as handle:
        handle.write(b"".join(key + b"\n" for key in keys))
        handle.flush()
        os.fsync(handle.fileno())
    return retired
