"""One Settings object, read from `COURSEGATE_*` variables or `.env`; an empty variable is unset."""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Literal

from cryptography.fernet import Fernet
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Environment(StrEnum):
    EMBEDDED = "embedded"
    PRODUCTION = "production"


class ConfigurationError(RuntimeError):
    """Start-up cannot go on: the message says which setting to fix."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="COURSEGATE_",
        env_file=".env",
        env_ignore_empty=True,
        extra="ignore",
    )

    env: Environment = Environment.EMBEDDED
    var_dir: Path = Path("var")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; a SQLite file under var_dir when unset",
    )
    db_pool_size: int = Field(
        default=20, ge=1, le=500, description="PostgreSQL connections per process"
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    # The HTTP server's guard against abusive clients (kit/httpserver.py, docs/operations.md).
    http_max_header_bytes: int = Field(
        default=64 * 1024, ge=8 * 1024, le=1024 * 1024, description="request line and headers"
    )
    http_request_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        le=600,
        description="for a whole request (headers and announced body) to arrive",
    )
    http_max_pending_requests: int = Field(
        default=256,
        ge=1,
        le=100_000,
        description="connections part-way through sending a request; more evicts the oldest",
    )
    http_keep_alive_seconds: int = Field(
        default=5, ge=1, le=600, description="how long an idle keep-alive connection is kept"
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="the master key (Fernet); during a rotation `new,old`, newest first",
    )
    allow_private_webhook_targets: bool = False
    smtp_url: SecretStr | None = None
    sentry_dsn: SecretStr | None = None
    log_level: str = "INFO"
    log_format: Literal["json", "console"] = "json"
    access_log: bool = True
    executor_id: str | None = Field(
        default=None, description="DBOS executor id; unique per process, generated when unset"
    )
    application_version: str | None = None
    scheduler_poll_seconds: float = Field(
        default=30.0, gt=0, description="how soon a new or changed schedule is picked up"
    )

    # Outbound webhooks (SPEC §5).
    webhook_timeout_seconds: float = Field(
        default=15.0, gt=0, le=120, description="one delivery attempt, connect to last byte"
    )
    dispatch_concurrency: int = Field(
        default=64, ge=1, le=1024, description="webhook requests in flight per worker process"
    )
    dispatch_batch: int = Field(
        default=256, ge=1, le=5000, description="due deliveries claimed per round trip"
    )
    dispatch_poll_seconds: float = Field(
        default=0.5, gt=0, description="how long an idle dispatcher waits before looking again"
    )
    email_from: str = Field(
        default="coursegate@localhost", description="sender of operational email"
    )

    # Learning-time enrichment of completion.recorded (SPEC §5, seed 004).
    learning_time_source: Literal["records", "sql"] = "records"
    learning_time_sql_url: SecretStr | None = Field(
        default=None, description="SQLAlchemy URL of the warehouse (source `sql`)"
    )
    learning_time_sql_query: str | None = Field(
        default=None, description="parameterised query returning seconds (source `sql`)"
    )
    learning_time_cache_seconds: float = Field(default=300.0, ge=0)
    learning_time_timeout_seconds: float = Field(default=2.0, gt=0)

    # Enrollment provisioning (SPEC §3, §6).
    seat_budget_credits: int = Field(
        default=100, ge=0, le=1_000_000, description="credit budget funded per enrollment"
    )
    provisioning_adapters: Literal["fake"] = Field(
        default="fake",
        description="accounting and identity provider; `fake` keeps their state in var_dir",
    )
    fake_adapter_faults: str = Field(
        default="",
        description="for tests and demos: `operation=fail|stall`, comma-separated",
    )
    saga_timeout_seconds: float = Field(
        default=120.0, gt=0, description="how long an assignment request waits for its saga"
    )

    # Pull connectors (SPEC §4).
    connector_timeout_seconds: float = Field(
        default=30.0, gt=0, le=600, description="per request to a partner API"
    )
    connector_retry_base_seconds: float = Field(
        default=1.0,
        ge=0,
        le=60,
        description="first backoff step between tries of a partner request; doubles each try",
    )

    @field_validator("database_url")
    @classmethod
    def _normalise_url(cls, value: str | None) -> str | None:
        return None if value is None else normalise_database_url(value)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.var_dir / 'coursegate.db').as_posix()}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @property
    def master_key_path(self) -> Path:
        """The embedded key file: one key per line, newest first (two only while rotating)."""
        return self.var_dir / "master.key"

    @property
    def master_key_from_file(self) -> bool:
        return self.secret_key is None and self.env is Environment.EMBEDDED

    def master_keys(self) -> tuple[bytes, ...]:
        """Every master key, newest first: the first encrypts, any of them decrypts.

        There is more than one only during a rotation (`coursegate secrets
        rotate-master`), so that rows still under the old key stay readable
        until they have all been re-encrypted. Production must be given its
        keys: generating one there would make every stored secret unreadable
        on the next machine. Embedded mode keeps a generated key beside the
        database so a restart can still read them.
        """
        if self.secret_key is not None:
            return parse_master_keys(self.secret_key.get_secret_value(), "COURSEGATE_SECRET_KEY")
        if self.env is Environment.PRODUCTION:
            raise ConfigurationError(
                "COURSEGATE_SECRET_KEY is required when COURSEGATE_ENV=production "
                "(generate one with: python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())')"
            )
        path = self.master_key_path
        if path.exists():
            return parse_master_keys(path.read_text(errors="replace"), str(path))
        self.var_dir.mkdir(parents=True, exist_ok=True)
        key = Fernet.generate_key()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(key)
        return (key,)

    def master_key(self) -> bytes:
        """The key new secrets are encrypted under."""
        return self.master_keys()[0]

    def check(self) -> None:
        """Fail start-up early and clearly on settings that cannot work."""
        self.master_keys()


def parse_master_keys(text: str, source: str) -> tuple[bytes, ...]:
    """Keys separated by commas or newlines, newest first; the messages never quote a key."""
    items = [item.strip() for item in text.replace("\n", ",").split(",")]
    keys = [item for item in items if item]
    if not keys:
        raise ConfigurationError(f"{source} holds no master key")
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key.encode())
        except ValueError:
            which = "" if len(keys) == 1 else f" (key {position} of {len(keys)})"
            raise ConfigurationError(
                f"{source} is not a Fernet key{which} (32 url-safe base64 bytes)"
            ) from None
    return tuple(dict.fromkeys(key.encode() for key in keys))


def normalise_database_url(url: str) -> str:
    """Accept the usual spellings and pick the async driver the application uses."""
    for plain in (
        "postgresql://",
        "postgres://",
        "postgresql+psycopg://",
        "postgresql+psycopg2://",
    ):
        if url.startswith(plain):
            return "postgresql+asyncpg://" + url[len(plain) :]
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
    if url.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite:///")):
        return url
    raise ValueError("COURSEGATE_DATABASE_URL must be a PostgreSQL or SQLite URL")


def sync_database_url(async_url: str) -> str:
    """The same database for synchronous drivers (DBOS's system database, Alembic's checks)."""
    if async_url.startswith("postgresql+asyncpg://"):
        return "postgresql+psycopg://" + async_url[len("postgresql+asyncpg://") :]
    if async_url.startswith("sqlite+aiosqlite:///"):
        return "sqlite:///" + async_url[len("sqlite+aiosqlite:///") :]
    return async_url
