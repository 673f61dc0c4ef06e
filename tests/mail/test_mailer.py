"""The SMTP mailer against a real local server, its URL, and the recording fake."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from coursegate.config import Settings
from coursegate.mail.mailer import (
    Email,
    MailError,
    RecordingMailer,
    SmtpMailer,
    mailer_from_settings,
)
from tests.mail.conftest import SmtpServer, free_port


def _email(**overrides: str) -> Email:
    fields = {
        "to_address": "learner@example.org",
        "subject": "Your enrollment",
        "body": "Hello,\n\nyou are enrolled. Café at 10.\n",
        "sender": "CourseGate <noreply@example.org>",
    }
    fields.update(overrides)
    return Email.model_validate(fields)


# --- URL ---------------------------------------------------------------------------------


def test_plain_url_defaults() -> None:
    mailer = SmtpMailer("smtp://mail.example.org")
    assert (mailer.host, mailer.port) == ("mail.example.org", 25)
    assert (mailer.use_tls, mailer.start_tls) == (False, False)
    assert mailer.username is None
    assert mailer.password is None


def test_url_with_credentials_port_and_starttls() -> None:
    mailer = SmtpMailer("smtp://user%40corp:p%3Ass%2Fw@Mail.Example.org:2525/?starttls=true")
    assert (mailer.host, mailer.port) == ("mail.example.org", 2525)
    assert mailer.username == "user@corp"
    assert mailer.password is not None
    assert mailer.password.get_secret_value() == "p:ss/w"
    assert (mailer.use_tls, mailer.start_tls) == (False, True)
    assert "p:ss" not in repr(mailer)
    assert "p%3Ass" not in repr(mailer)


def test_smtps_url_is_implicit_tls_on_465() -> None:
    mailer = SmtpMailer("smtps://u:pw@relay.example.org", timeout=5)
    assert (mailer.port, mailer.use_tls, mailer.start_tls) == (465, True, False)
    assert mailer.timeout == 5
    assert SmtpMailer("smtps://relay.example.org:2465").port == 2465


def test_starttls_false_is_accepted() -> None:
    assert SmtpMailer("smtp://relay.example.org?starttls=false").start_tls is False


@pytest.mark.parametrize(
    "url",
    [
        "http://mail.example.org",
        "mail.example.org:25",
        "smtp://",
        "smtp://mail.example.org:99999",
        "smtp://mail.example.org:port",
        "smtp://mail.example.org/inbox",
        "smtp://mail.example.org?starttls=maybe",
        "smtp://mail.example.org?tls=true",
        "smtps://mail.example.org?starttls=true",
        "smtp://user@mail.example.org",
        "smtp://:hunter2@mail.example.org",
    ],
)
def test_bad_url_is_a_value_error(url: str) -> None:
    with pytest.raises(ValueError, match=r"(?i)smtp url|port") as raised:
        SmtpMailer(url)
    assert "hunter2" not in str(raised.value)


def test_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match="timeout"):
        SmtpMailer("smtp://mail.example.org", timeout=0)


def test_mailer_from_settings() -> None:
    assert mailer_from_settings(Settings(_env_file=None)) is None
    settings = Settings(smtp_url=SecretStr("smtps://u:pw@relay.example.org"), _env_file=None)
    mailer = mailer_from_settings(settings)
    assert isinstance(mailer, SmtpMailer)
    assert (mailer.host, mailer.port, mailer.use_tls) == ("relay.example.org", 465, True)


# --- the message ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        {"subject": "Hi\r\nBcc: everyone@example.org"},
        {"to_address": "learner@example.org\nBcc: everyone@example.org"},
        {"to_address": "Learner <learner@example.org>"},
        {"to_address": "not-an-address"},
        {"sender": "noreply@example.org\r\nX-Injected: 1"},
        {"sender": "nobody"},
        {"subject": "x" * 256},
    ],
)
def test_header_injection_and_bad_addresses_are_refused(overrides: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        _email(**overrides)


def test_message_headers_and_envelope_sender() -> None:
    email = _email(message_id="<abc@example.org>")
    assert email.envelope_sender == "noreply@example.org"
    message = email.to_message()
    assert message["From"] == "CourseGate <noreply@example.org>"
    assert message["To"] == "learner@example.org"
    assert message["Message-ID"] == "<abc@example.org>"
    assert message["Date"]
    assert message.get_content() == "Hello,\n\nyou are enrolled. Café at 10.\n"


# --- SMTP ------------------------------------------------------------------------------------


async def test_smtp_delivers(smtp_server: SmtpServer) -> None:
    await SmtpMailer(smtp_server.url, timeout=5).send(_email())
    [received] = smtp_server.inbox.messages
    assert received.mail_from == "noreply@example.org"
    assert received.rcpt_tos == ["learner@example.org"]
    assert received.message["Subject"] == "Your enrollment"
    body = received.message.get_content().replace("\r\n", "\n")  # CRLF on the wire
    assert body == "Hello,\n\nyou are enrolled. Café at 10.\n"


async def test_smtp_logs_in_with_the_url_credentials(smtp_server_with_auth: SmtpServer) -> None:
    server = smtp_server_with_auth
    url = f"smtp://mailer:s3cret%3Apw@127.0.0.1:{server.port}"
    await SmtpMailer(url, timeout=5).send(_email())
    assert server.inbox.logins == [("mailer", "s3cret:pw")]
    assert len(server.inbox.messages) == 1


async def test_smtp_refused_login_is_transient(smtp_server_with_auth: SmtpServer) -> None:
    url = f"smtp://mailer:wrong@127.0.0.1:{smtp_server_with_auth.port}"
    with pytest.raises(MailError) as raised:
        await SmtpMailer(url, timeout=5).send(_email())
    assert raised.value.transient, "a wrong password is fixed in configuration, then mail goes"
    assert "wrong" not in raised.value.message
    assert smtp_server_with_auth.inbox.messages == []


async def test_smtp_4xx_is_transient(smtp_server: SmtpServer) -> None:
    smtp_server.inbox.reply = "451 4.3.0 Try again later"
    with pytest.raises(MailError) as raised:
        await SmtpMailer(smtp_server.url, timeout=5).send(_email())
    assert raised.value.transient
    assert raised.value.message.startswith("451")


async def test_smtp_5xx_is_permanent(smtp_server: SmtpServer) -> None:
    smtp_server.inbox.reply = "550 5.1.1 No such user"
    with pytest.raises(MailError) as raised:
        await SmtpMailer(smtp_server.url, timeout=5).send(_email())
    assert not raised.value.transient
    assert raised.value.message.startswith("550")


async def test_smtp_connection_refused_is_transient() -> None:
    with pytest.raises(MailError) as raised:
        await SmtpMailer(f"smtp://127.0.0.1:{free_port()}", timeout=5).send(_email())
    assert raised.value.transient


# --- the fake --------------------------------------------------------------------------------


async def test_recording_mailer_records_and_fails_on_demand() -> None:
    mailer = RecordingMailer()
    mailer.fail_next(2)
    mailer.fail_next(transient=False, message="550 no")
    outcomes: list[bool | None] = []
    for _ in range(4):
        try:
            await mailer.send(_email())
            outcomes.append(None)
        except MailError as exc:
            outcomes.append(exc.transient)
    assert outcomes == [True, True, False, None]
    assert mailer.sent == [_email()]
