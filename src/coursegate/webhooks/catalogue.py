"""The event catalogue (SPEC §5): what an endpoint may subscribe to."""

from __future__ import annotations

from collections.abc import Iterable

ALL = "*"

EVENT_TYPES: frozenset[str] = frozenset(
    {
        "completion.recorded",
        "credit.earned",
        *(
            f"enrollment.{kind}"
            for kind in (
                "created",
                "claimed",
                "activated",
                "completed",
                "dropped",
                "canceled",
                "expired",
                "archived",
                "reminder",
            )
        ),
        "authorization.validated",
        "connector.run.failed",
        "connector.run.held",
        "connector.entry.rejected",
        "endpoint.disabled",
    }
)


def subscribes(event_types: Iterable[str], event_type: str) -> bool:
    """Exact names or `*`, the one wildcard: no prefixes or patterns to guess at."""
    return any(t in (ALL, event_type) for t in event_types)
