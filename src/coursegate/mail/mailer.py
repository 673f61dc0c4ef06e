"""Sending one email: the `Mailer` protocol, its SMTP implementation and a recording fake.

A mailer says how a failure should be handled, not only that it happened: a
`MailError` is transient (try again later: the server is down, busy or
answered 4xx) or permanent (the server refused this message with a 5xx, or
the message cannot be built). The send queue retries the first and gives up
on the second.
"""

from __future__ import annotations

import re
from collections import deque
from email.errors import MessageError
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import TYPE_CHECKING, Annotated, Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

import aiosmtplib
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr

if TYPE_CHECKING:
    from coursegate.config import Settings

_ADDRESS = re.compile(r"[^\s@<>,;:\"()\[\]\\]+@[^\s@<>,;:\"()\[\]\\]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MESSAGE_ID = re.compile(r"<[^\s<>@]+@[^\s<>@]+>")
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})
DEFAULT_PORTS = {"smtp": 25, "smtps": 465}


class MailError(Exception):
    """A send failed; `transient` says whether trying again later may succeed."""

    def __init__(self, transient: bool, message: str) -> None:
        super().__init__(message)
        self.transient = transient
        self.message = message

    def __repr__(self) -> str:
        return f"MailError(transient={self.transient!r}, message={self.message!r})"


def _no_control_characters(value: str) -> str:
    """A header value with a line break in it would let its content write further headers."""
    if _CONTROL.search(value):
        raise ValueError("must not contain line breaks or other control characters")
    return value


def _address(value: str) -> str:
    if not _ADDRESS.fullmatch(value):
        raise ValueError("must be a bare address, local@domain")
    return value


def check_sender(value: str) -> str:
    """`local@domain`, or `Display Name <local@domain>`."""
    _no_control_characters(value)
    _address(parseaddr(value)[1])
    return value


def _message_id(value: str | None) -> str | None:
    if value is not None and not _MESSAGE_ID.fullmatch(value):
        raise ValueError("must look like <unique@domain>")
    return value


HeaderText = Annotated[str, AfterValidator(_no_control_characters)]
Address = Annotated[str, Field(max_length=320), AfterValidator(_address)]
Subject = Annotated[HeaderText, Field(max_length=255)]


class Email(BaseModel):
    """One plain-text email, ready to send."""

    model_config = ConfigDict(frozen=True)

    to_address: Address
    subject: Subject
    body: str
    sender: Annotated[str, Field(max_length=320), AfterValidator(check_sender)]
    message_id: Annotated[str | None, AfterValidator(_message_id)] = None
    """Stable across retries, so a copy sent twice (at-least-once) can be recognised."""

    @property
    def envelope_sender(self) -> str:
        return parseaddr(self.sender)[1]

    def to_message(self) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = self.to_address
        message["Subject"] = self.subject
        message["Date"] = formatdate(usegmt=True)
        if self.message_id is not None:
            message["Message-ID"] = self.message_id
        message.set_content(self.body)
        return message


class Mailer(Protocol):
    async def send(self, email: Email) -> None:
        """Hand the email over for delivery, or raise `MailError`."""
        ...


def _parse_flag(name: str, value: str) -> bool:
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"SMTP URL parameter {name} must be true or false")


class SmtpMailer:
    """Sends over SMTP, one connection per email.

    `smtp://[user:password@]host[:port][?starttls=true]` speaks plain SMTP
    (port 25 unless given), upgraded with STARTTLS when asked;
    `smtps://…` uses implicit TLS (port 465 unless given). User and password
    are percent-decoded. The password is kept as a secret and never appears in
    `repr`, logs or error messages.
    """

    def __init__(self, url: str, *, timeout: float = 30) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        parts = urlsplit(url)
        if parts.scheme not in DEFAULT_PORTS:
            raise ValueError("SMTP URL must start with smtp:// or smtps://")
        if not parts.hostname:
            raise ValueError("SMTP URL has no host")
        if parts.path not in {"", "/"} or parts.fragment:
            raise ValueError("SMTP URL takes no path or fragment")
        port = parts.port  # raises ValueError on a port that is not a number in range
        start_tls = False
        for name, value in parse_qsl(parts.query, keep_blank_values=True):
            if name != "starttls":
                raise ValueError(f"unknown SMTP URL parameter {name!r}")
            start_tls = _parse_flag(name, value)
        if start_tls and parts.scheme == "smtps":
            raise ValueError("SMTP URL: smtps:// is already TLS; starttls applies to smtp:// only")
        username = unquote(parts.username) if parts.username is not None else None
        password = unquote(parts.password) if parts.password is not None else None
        if password is not None and not username:
            raise ValueError("SMTP URL has a password but no user")
        if username and password is None:
            raise ValueError("SMTP URL has a user but no password")

        self.host: str = parts.hostname
        self.port: int = port if port is not None else DEFAULT_PORTS[parts.scheme]
        self.use_tls: bool = parts.scheme == "smtps"
        self.start_tls: bool = start_tls
        self.username: str | None = username or None
        self.password: SecretStr | None = SecretStr(password) if password is not None else None
        self.timeout = timeout

    def __repr__(self) -> str:
        scheme = "smtps" if self.use_tls else "smtp"
        auth = f"{self.username}:**********@" if self.username else ""
        query = "?starttls=true" if self.start_tls else ""
        return f"SmtpMailer('{scheme}://{auth}{self.host}:{self.port}{query}')"

    async def send(self, email: Email) -> None:
        try:
            message = email.to_message()
        except (ValueError, MessageError) as exc:
            raise MailError(False, f"cannot build the message: {exc}") from None
        try:
            await aiosmtplib.send(
                message,
                sender=email.envelope_sender,
                recipients=[email.to_address],
                hostname=self.host,
                port=self.port,
                username=self.username,
                password=self.password.get_secret_value() if self.password else None,
                use_tls=self.use_tls,
                start_tls=self.start_tls,
                timeout=self.timeout,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise classify(exc) from None


def classify(exc: Exception) -> MailError:
    """4xx, connection trouble and server-wide refusals are transient; a 5xx to this message is not.

    A refused login or greeting, or a missing extension (STARTTLS, AUTH), is
    the same for every email: it is a configuration to fix, after which the
    queued emails should still go, so it is transient.
    """
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        refusals = exc.recipients
        text = "; ".join(f"{r.code} {r.message}" for r in refusals) or str(exc)
        permanent = bool(refusals) and all(500 <= r.code < 600 for r in refusals)
        return MailError(not permanent, text)
    if isinstance(
        exc,
        aiosmtplib.SMTPAuthenticationError
        | aiosmtplib.SMTPHeloError
        | aiosmtplib.SMTPConnectResponseError,
    ):
        return MailError(True, f"{exc.code} {exc.message}")
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return MailError(not 500 <= exc.code < 600, f"{exc.code} {exc.message}")
    return MailError(True, f"{type(exc).__name__}: {exc}")


class RecordingMailer:
    """A mailer that keeps what it is given; for tests and the demo.

    `fail_next` queues failures that the next sends raise, in order, instead of
    recording the email.
    """

    def __init__(self) -> None:
        self.sent: list[Email] = []
        self._failures: deque[tuple[bool, str]] = deque()

    def fail_next(self, count: int = 1, *, transient: bool = True, message: str = "") -> None:
        text = message or ("451 try again later" if transient else "550 mailbox unavailable")
        self._failures.extend((transient, text) for _ in range(count))

    async def send(self, email: Email) -> None:
        if self._failures:
            transient, text = self._failures.popleft()
            raise MailError(transient, text)
        self.sent.append(email)


def mailer_from_settings(settings: Settings) -> Mailer | None:
    """The configured SMTP mailer, or None when `smtp_url` is unset (email is then not sent)."""
    if settings.smtp_url is None:
        return None
    return SmtpMailer(settings.smtp_url.get_secret_value())
