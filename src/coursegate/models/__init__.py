"""Every table, on one declarative base with one naming convention.

Importing this package registers every model on `Base.metadata`, which is
what Alembic compares the migrations against.
"""

from coursegate.models.activity import ActivityCount, ActivityMark
from coursegate.models.base import Base
from coursegate.models.connectors import (
    Authorization,
    Connector,
    ConnectorReject,
    ConnectorRun,
    RosterEnrollment,
)
from coursegate.models.courses import Course, CourseExternalId, Seat, SeatOrder
from coursegate.models.enrollments import Enrollment, EnrollmentLock, ScheduledEvent
from coursegate.models.inbound import (
    Completion,
    Credit,
    CreditTotal,
    Event,
    IdempotencyKey,
    InboundAudit,
    ParkedRequest,
    Provider,
    ProviderKey,
)
from coursegate.models.operators import ConsoleSession, LoginFailure, Operator, OperatorAction
from coursegate.models.programs import Person, PersonIdentifier, Program
from coursegate.models.tenancy import ApiKey, Tenant
from coursegate.models.webhooks import Delivery, DeliveryAttempt, OutboundEmail, WebhookEndpoint

__all__ = [
    "ActivityCount",
    "ActivityMark",
    "ApiKey",
    "Authorization",
    "Base",
    "Completion",
    "Connector",
    "ConnectorReject",
    "ConnectorRun",
    "ConsoleSession",
    "Course",
    "CourseExternalId",
    "Credit",
    "CreditTotal",
    "Delivery",
    "DeliveryAttempt",
    "Enrollment",
    "EnrollmentLock",
    "Event",
    "IdempotencyKey",
    "InboundAudit",
    "LoginFailure",
    "Operator",
    "OperatorAction",
    "OutboundEmail",
    "ParkedRequest",
    "Person",
    "PersonIdentifier",
    "Program",
    "Provider",
    "ProviderKey",
    "RosterEnrollment",
    "ScheduledEvent",
    "Seat",
    "SeatOrder",
    "Tenant",
    "WebhookEndpoint",
]
