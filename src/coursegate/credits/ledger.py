"""Pooling hours into credits: pure arithmetic, kept apart so it can be checked exhaustively."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class Crossing:
    hours_total: Decimal
    credits_before: int
    credits_total: int

    @property
    def sequences(self) -> range:
        """The ledger sequences this addition earned (empty when no threshold was crossed)."""
        return range(self.credits_before + 1, self.credits_total + 1)


def credits_for(hours: Decimal, hours_per_credit: Decimal) -> int:
    """`floor(hours / hours_per_credit)`, exactly: both are two-decimal numbers."""
    return int(hours * 100) // int(hours_per_credit * 100)


def crossing(hours_total: Decimal, added: Decimal, hours_per_credit: Decimal) -> Crossing:
    """The thresholds crossed when `added` hours brought the pool to `hours_total`."""
    return Crossing(
        hours_total=hours_total,
        credits_before=credits_for(hours_total - added, hours_per_credit),
        credits_total=credits_for(hours_total, hours_per_credit),
    )
