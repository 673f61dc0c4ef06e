"""The refusals of enrollments (SPEC §3), each with its public code."""

from __future__ import annotations

from coursegate.kit.errors import DomainError


class NoSeatsAvailable(DomainError):
    code = "NO_SEATS_AVAILABLE"
    status = 409


class EnrollmentExists(DomainError):
    code = "ENROLLMENT_EXISTS"
    status = 409


class NotCancelable(DomainError):
    code = "NOT_CANCELABLE"
    status = 409


class EnrollmentNotLive(DomainError):
    """Drop, cancel and activity apply to a live enrollment (assigned, claimed, active)."""

    code = "ENROLLMENT_NOT_LIVE"
    status = 409


class InvalidTransition(DomainError):
    """The transition does not start from the enrollment's status (claiming an active one)."""

    code = "INVALID_TRANSITION"
    status = 409


class CourseNotActive(DomainError):
    """Seats are assigned in an active course only: a draft is not ready, an expired one is over."""

    code = "COURSE_NOT_ACTIVE"
    status = 409


class ProvisioningFailed(DomainError):
    """An outside system failed during a batch assignment; everything was undone."""

    code = "PROVISIONING_FAILED"
    status = 502
