"""The declarative base and the column types shared by every table (SPEC §0)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, ClassVar, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Dialect,
    ForeignKeyConstraint,
    MetaData,
    String,
    Table,
    TypeDecorator,
    Uuid,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

TENANT_SLUG_LENGTH = 63


class UtcDateTime(TypeDecorator[datetime]):
    """An instant stored as UTC and read back timezone-aware, on both databases.

    PostgreSQL keeps `timestamptz`. SQLite has no such type: SQLAlchemy stores a
    fixed-width `YYYY-MM-DD HH:MM:SS.ffffff` text, which sorts and compares
    correctly only if every value is in the same zone, so every value is
    converted to UTC on the way in and a naive value is refused outright.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetimes are not stored; give an aware UTC instant")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


HUNDREDTH = Decimal("0.01")


def to_hundredths(hours: Decimal) -> int:
    """Exact hours → integer hundredths; more than two decimals is a caller's bug, not rounding."""
    scaled = hours * 100
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{hours} has more than two decimal places")
    return int(scaled)


def from_hundredths(value: int) -> Decimal:
    return (Decimal(value) / 100).quantize(HUNDREDTH, rounding=ROUND_HALF_EVEN)


class Hours(TypeDecorator[Decimal]):
    """Hours as integer hundredths of an hour.

    SQLite has no exact decimal column (a `Numeric` there is a float, and
    summing real hours as floats was measured to lose a credit), so both
    databases store integers and Python sees `Decimal`.
    """

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> int | None:
        return None if value is None else to_hundredths(value)

    def process_result_value(self, value: int | None, dialect: Dialect) -> Decimal | None:
        return None if value is None else from_hundredths(value)


JsonDocument = JSON().with_variant(JSONB(), "postgresql")
"""A JSON document: `jsonb` on PostgreSQL, JSON text on SQLite."""


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UtcDateTime(),
        uuid.UUID: Uuid(as_uuid=True),
        Decimal: Hours(),
    }


def tenant_fk(
    columns: str | tuple[str, ...],
    table: str,
    remote: tuple[str, ...] = ("id",),
    ondelete: str | None = None,
) -> ForeignKeyConstraint:
    """A foreign key that includes `tenant_id`, so a row can only point inside its own tenant."""
    local = (columns,) if isinstance(columns, str) else columns
    return ForeignKeyConstraint(
        ["tenant_id", *local],
        [f"{table}.tenant_id", *(f"{table}.{c}" for c in remote)],
        ondelete=ondelete,
    )


def tenant_owned(table: str = "tenants") -> ForeignKeyConstraint:
    """The foreign key of a table whose rows belong directly to a tenant."""
    return ForeignKeyConstraint(["tenant_id"], [f"{table}.id"], ondelete="CASCADE")


def tenant_column() -> Mapped[str]:
    """The `tenant_id` every table carries; it leads every primary key, unique key and foreign key."""
    return mapped_column(String(TENANT_SLUG_LENGTH), primary_key=True)


def table_of(model: type[Base]) -> Table:
    """A model's Core table, for hot paths that leave the ORM."""
    return cast(Table, model.__table__)
