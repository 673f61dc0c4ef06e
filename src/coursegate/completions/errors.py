"""The domain refusals of an inbound completion (SPEC §2)."""

from __future__ import annotations

from coursegate.kit.errors import DomainError


class PersonNotFound(DomainError):
    code = "PERSON_NOT_FOUND"
    status = 422


class AlreadyCompleted(DomainError):
    code = "ALREADY_COMPLETED"
    status = 422


class IdempotencyKeyReused(DomainError):
    code = "IDEMPOTENCY_KEY_REUSED"
    status = 422
