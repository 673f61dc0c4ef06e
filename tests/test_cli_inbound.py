"""The inbound CLI: providers and their keys, `sign`, `replay parked`, and `demo` end to end.

Like tests/test_cli.py, each command runs as a user would run it, against the
test's database, in this process (tests/cli.py); the demo's walk-through runs
real processes, as the README has a user do. What `sign` prints is checked
with the verifiers the server uses (and the Standard Webhooks reference
library), so a header that looks right but would be refused cannot pass.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from standardwebhooks.webhooks import Webhook

from coursegate.config import Settings
from coursegate.db import Database
from coursegate.kit.clock import FrozenClock, SystemClock
from coursegate.kit.signing import SignatureError, parse_hmac_authorization, verify_hmac
from coursegate.models import Program
from coursegate.tenancy.service import TenancyService
from tests.cli import CliResult, run_cli
from tests.completions.conftest import make_setup

PATH = "/v1/inbound/acme/edovo/completions"
BODY = b'{"person_id": "123456", "state_code": "US_CO", "content_hours": 4.5}'
PARTNER_SECRET = "partner-secret-from-the-environment-0123456789"
PARTNER_WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def ok(result: CliResult) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def seed_program(settings: Settings) -> None:
    """Tenant `acme` with program `co-earned-time`, written as the services and the API do."""

    async def work() -> None:
        database = Database(settings.resolved_database_url, pool_size=1)
        clock = SystemClock()
        try:
            async with database.transaction() as session:
                await TenancyService(session, clock).create_tenant("acme")
                session.add(
                    Program(
                        tenant_id="acme",
                        id="co-earned-time",
                        name="Colorado earned time",
                        jurisdiction="US_CO",
                        hours_per_credit=Decimal("6"),
                        identifier_namespace="us_co_doc_id",
                        created_at=clock.now(),
                    )
                )
        finally:
            await database.dispose()

    asyncio.run(work())


@pytest.fixture
def program(settings: Settings) -> Settings:
    seed_program(settings)
    return settings


def create_provider(
    settings: Settings, *args: str, scheme: str = "hmac-authorization", provider: str = "edovo"
) -> dict[str, Any]:
    result = run_cli(
        settings,
        "providers",
        "create",
        provider,
        "--tenant",
        "acme",
        "--program",
        "co-earned-time",
        "--scheme",
        scheme,
        *args,
        "--json",
        env={"PARTNER_SECRET": PARTNER_SECRET, "PARTNER_WHSEC": PARTNER_WHSEC},
    )
    lines = ok(result).splitlines()
    assert len(lines) == 1
    created: dict[str, Any] = json.loads(lines[0])
    return created


def body_file(tmp_path: Path, body: bytes = BODY) -> Path:
    path = tmp_path / "body.json"
    path.write_bytes(body)
    return path


def sign(
    settings: Settings, key: str, file: Path | str, *extra: str, provider: str = "edovo"
) -> CliResult:
    return run_cli(
        settings,
        "sign",
        "--tenant",
        "acme",
        "--provider",
        provider,
        "--key",
        key,
        *extra,
        str(file),
        env={"PARTNER_SECRET": PARTNER_SECRET, "PARTNER_WHSEC": PARTNER_WHSEC},
    )


def assert_hmac_verifies(
    line: str, secret: str, *, key: str, body: bytes = BODY, method: str = "POST", path: str = PATH
) -> None:
    name, _, header = line.partition(": ")
    assert name == "Authorization"
    auth = parse_hmac_authorization(header)
    assert auth.key_id == key
    verify_hmac(auth, secret, method, path, body, datetime.now(UTC))


# --- providers ---------------------------------------------------------------------------


def test_create_generates_or_references_secrets_and_the_json_shows_each_once(
    program: Settings, tmp_path: Path
) -> None:
    created = create_provider(
        program, "--key", "k1", "--key", "k2", "--secret-ref", "env:PARTNER_SECRET"
    )
    assert set(created) == {"provider", "keys"}
    assert created["provider"] == "edovo"
    referenced, generated = created["keys"]
    # Refs pair with keys in order; the key without one gets a generated secret.
    assert referenced == {"key_id": "k1", "secret_ref": "env:PARTNER_SECRET"}
    assert set(generated) == {"key_id", "secret", "secret_ref"}
    assert generated["key_id"] == "k2"
    assert generated["secret_ref"] is None
    assert len(generated["secret"]) >= 32

    file = body_file(tmp_path)
    for key, secret in (("k1", PARTNER_SECRET), ("k2", generated["secret"])):
        result = sign(program, key, file)
        lines = ok(result).splitlines()
        assert len(lines) == 1
        assert_hmac_verifies(lines[0], secret, key=key)
        assert secret not in result.stdout + result.stderr


def test_create_without_json_says_what_was_made(program: Settings) -> None:
    result = run_cli(
        program,
        "providers",
        "create",
        "edovo",
        "--tenant",
        "acme",
        "--program",
        "co-earned-time",
        "--scheme",
        "hmac-authorization",
        "--key",
        "k1",
    )
    out = ok(result)
    assert "provider edovo created" in out
    assert PATH in out
    assert "key k1 secret (shown once): " in out


def test_a_bad_program_is_refused_and_nothing_is_created(program: Settings) -> None:
    bad = run_cli(
        program,
        "providers",
        "create",
        "edovo",
        "--tenant",
        "acme",
        "--program",
        "no-such-program",
        "--scheme",
        "hmac-authorization",
        "--key",
        "k1",
        "--json",
    )
    assert bad.returncode == 1
    assert "VALIDATION_ERROR" in bad.stderr
    assert "program_id" in bad.stderr
    assert bad.stdout == ""
    # Had the provider been written, this would be ALREADY_EXISTS.
    assert create_provider(program, "--key", "k1")["provider"] == "edovo"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--key", "K 1"], 1, "VALIDATION_ERROR"),
        (["--key", "k1", "--key", "k1"], 1, "VALIDATION_ERROR"),
        (["--key", "k1", "--secret-ref", "not-a-ref"], 1, "keys.0.secret_ref"),
        (["--key", "k1", "--secret-ref", "env:UNSET_IN_THIS_PROCESS"], 1, "VALIDATION_ERROR"),
        (["--key", "k1", "--secret-ref", "env:A", "--secret-ref", "env:B"], 2, "--secret-ref"),
        (["--key", "k1", "--tenant", "nobody"], 1, "NOT_FOUND"),
    ],
)
def test_bad_provider_input_fails_clearly(
    program: Settings, args: list[str], code: int, message: str
) -> None:
    tenant = [] if "--tenant" in args else ["--tenant", "acme"]
    result = run_cli(
        program,
        "providers",
        "create",
        "edovo",
        *tenant,
        "--program",
        "co-earned-time",
        "--scheme",
        "hmac-authorization",
        *args,
    )
    assert result.returncode == code, result.stderr
    assert message in result.stderr
    assert result.stdout == ""
    assert "not-a-ref" not in result.stderr  # a pasted secret is never echoed


def test_add_key_and_retire_key(program: Settings, tmp_path: Path) -> None:
    first = create_provider(program, "--key", "k1")["keys"][0]["secret"]
    added = json.loads(
        ok(run_cli(program, "providers", "add-key", "edovo", "k2", "--tenant", "acme", "--json"))
    )
    assert set(added) == {"provider", "key_id", "secret", "secret_ref"}
    assert (added["provider"], added["key_id"], added["secret_ref"]) == ("edovo", "k2", None)
    referenced = json.loads(
        ok(
            run_cli(
                program,
                "providers",
                "add-key",
                "edovo",
                "k3",
                "--tenant",
                "acme",
                "--secret-ref",
                "env:PARTNER_SECRET",
                "--json",
                env={"PARTNER_SECRET": PARTNER_SECRET},
            )
        )
    )
    assert referenced == {"provider": "edovo", "key_id": "k3", "secret_ref": "env:PARTNER_SECRET"}

    file = body_file(tmp_path)
    # During the rotation both keys sign.
    assert_hmac_verifies(ok(sign(program, "k1", file)).strip(), first, key="k1")
    assert_hmac_verifies(ok(sign(program, "k2", file)).strip(), added["secret"], key="k2")

    retired = run_cli(program, "providers", "retire-key", "edovo", "k1", "--tenant", "acme")
    assert "key k1 of provider edovo retired at " in ok(retired)
    refused = sign(program, "k1", file)
    assert refused.returncode == 1
    assert "KEY_RETIRED" in refused.stderr
    assert "k1" in refused.stderr
    assert refused.stdout == ""
    assert first not in refused.stderr
    # Retiring again is harmless; an unknown key or provider is NOT_FOUND.
    assert (
        run_cli(program, "providers", "retire-key", "edovo", "k1", "--tenant", "acme").returncode
        == 0
    )
    for args in (["edovo", "k9"], ["nobody", "k1"]):
        missing = run_cli(program, "providers", "retire-key", *args, "--tenant", "acme")
        assert missing.returncode == 1
        assert "NOT_FOUND" in missing.stderr
    # Key ids are never reused, not even a retired one's.
    again = run_cli(program, "providers", "add-key", "edovo", "k1", "--tenant", "acme")
    assert again.returncode == 1
    assert "ALREADY_EXISTS" in again.stderr


# --- sign --------------------------------------------------------------------------------


def test_sign_reads_stdin_and_binds_method_and_path(program: Settings) -> None:
    secret = create_provider(program, "--key", "k1")["keys"][0]["secret"]
    body = b'{"x": 1}\n'
    result = run_cli(
        program,
        "sign",
        "--tenant",
        "acme",
        "--provider",
        "edovo",
        "--key",
        "k1",
        "--method",
        "put",
        "--path",
        "/elsewhere?a=1",
        "--header-only",
        "-",
        stdin=body.decode(),
    )
    out = ok(result)
    assert out.count("\n") == 1
    assert result.stderr == ""  # --header-only is meant for $(...): nothing else
    assert_hmac_verifies(
        out.strip(), secret, key="k1", body=body, method="PUT", path="/elsewhere?a=1"
    )
    header = out.strip().removeprefix("Authorization: ")
    # Bound to what was signed: the inbound path does not verify with it.
    with pytest.raises(SignatureError):
        verify_hmac(parse_hmac_authorization(header), secret, "PUT", PATH, body, datetime.now(UTC))


def test_sign_standard_webhooks_verifies_with_the_reference_library(
    program: Settings, tmp_path: Path
) -> None:
    created = create_provider(
        program,
        "--key",
        "k1",
        "--key",
        "k2",
        "--secret-ref",
        "env:PARTNER_WHSEC",
        scheme="standard-webhooks",
    )
    generated = created["keys"][1]["secret"]
    assert generated.startswith("whsec_")
    file = body_file(tmp_path)
    for key, secret in (("k1", PARTNER_WHSEC), ("k2", generated)):
        result = sign(program, key, file)
        lines = ok(result).splitlines()
        assert [line.split(": ", 1)[0] for line in lines] == [
            "webhook-id",
            "webhook-timestamp",
            "webhook-signature",
        ]
        headers = dict(line.split(": ", 1) for line in lines)
        assert headers["webhook-id"].startswith("msg_")
        assert Webhook(secret).verify(BODY, headers)["person_id"] == "123456"
        assert secret not in result.stdout + result.stderr
        assert secret.removeprefix("whsec_") not in result.stdout + result.stderr

    header_only = sign(program, "k2", file, "--header-only")
    assert header_only.returncode == 1
    assert "--header-only" in header_only.stderr
    assert header_only.stdout == ""


def test_sign_refuses_what_it_cannot_sign(program: Settings, tmp_path: Path) -> None:
    create_provider(program, "--key", "k1", "--key", "k2", "--secret-ref", "env:PARTNER_SECRET")
    file = body_file(tmp_path)
    cases: list[tuple[list[str], str]] = [
        (["--key", "k9", "--provider", "edovo"], "NOT_FOUND"),
        (["--key", "k1", "--provider", "nobody"], "NOT_FOUND"),
    ]
    for args, message in cases:
        result = run_cli(program, "sign", "--tenant", "acme", *args, str(file))
        assert result.returncode == 1
        assert message in result.stderr
        assert result.stdout == ""
    # The referenced secret is not in this process's environment.
    unset = run_cli(
        program, "sign", "--tenant", "acme", "--provider", "edovo", "--key", "k1", str(file)
    )
    assert unset.returncode == 1
    assert "env:PARTNER_SECRET" in unset.stderr
    missing = sign(program, "k2", tmp_path / "missing.json")
    assert missing.returncode == 1
    assert "cannot read" in missing.stderr


# --- replay parked -----------------------------------------------------------------------


def test_replay_parked_with_nothing_parked(program: Settings) -> None:
    text = ok(run_cli(program, "replay", "parked", "--tenant", "acme"))
    assert text == "replayed 0: accepted=0 duplicate=0 still_parked=0 rejected=0\n"
    payload = json.loads(ok(run_cli(program, "replay", "parked", "--tenant", "acme", "--json")))
    assert payload == {
        "tenant": "acme",
        "replayed": 0,
        "accepted": 0,
        "duplicate": 0,
        "still_parked": 0,
        "rejected": 0,
        "results": [],
    }
    unknown = run_cli(program, "replay", "parked", "--tenant", "nobody")
    assert unknown.returncode == 1
    assert "NOT_FOUND" in unknown.stderr


async def test_replay_parked_reports_each_request(
    client: httpx.AsyncClient, clock: FrozenClock, acme: str, settings: Settings
) -> None:
    setup = await make_setup(client, clock, acme)
    parked = await setup.send(setup.payload(person_id="777"))
    assert parked.json()["error"] == "PERSON_NOT_FOUND"

    result = await asyncio.to_thread(run_cli, settings, "replay", "parked", "--tenant", "acme")
    lines = ok(result).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("parked ")
    assert lines[0].endswith(": still_parked")
    assert lines[1] == "replayed 1: accepted=0 duplicate=0 still_parked=1 rejected=0"
    replays = [a for a in await setup.audit() if a["replay_of"]]
    assert [a["outcome"] for a in replays] == ["replay_still_parked"]


# --- demo --------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _bash(command: str, cwd: Path) -> dict[str, Any]:
    """Run a printed command as a user would paste it: no COURSEGATE_* variables, elsewhere."""
    result = subprocess.run(
        ["bash", "-c", command],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    answer: dict[str, Any] = json.loads(result.stdout)
    return answer


def _wait_ready(base: str, server: subprocess.Popen[bytes], log: Path) -> None:
    started = time.monotonic()
    while time.monotonic() - started < 30:
        assert server.poll() is None, log.read_text()[-3000:]
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail(f"the server was not ready within 30 s:\n{log.read_text()[-3000:]}")


@pytest.mark.long
def test_demo_from_nothing_to_a_credit(db_url: str, tmp_path: Path) -> None:
    """Every printed command, pasted elsewhere against a real server: the assignment
    runs the saga, the completion completes the first learner's enrollment."""
    if not db_url.startswith("sqlite"):
        pytest.skip("the demo is about the embedded default: a fresh SQLite file")
    home = tmp_path / "demo"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "COURSEGATE_VAR_DIR": str(home / "var"),
        "COURSEGATE_DATABASE_URL": f"sqlite:///{home}/fresh.db",
    }

    def demo() -> dict[str, Any]:
        result = subprocess.run(
            [sys.executable, "-m", "coursegate", "demo", "--json", "--url", base],
            env=env,
            cwd=home,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert len(lines) == 1
        payload: dict[str, Any] = json.loads(lines[0])
        return payload

    home.mkdir()
    first = demo()
    assert set(first) == {
        "api_key",
        "assign_command",
        "send_command",
        "credits_command",
        "enrollments_command",
        "tenant",
        "program",
        "provider",
        "course",
        "person_id",
        "console_url",
        "console_organisation",
        "console_email",
        "console_password",
    }
    assert first["console_url"] == f"{base}/console"
    assert (first["tenant"], first["program"], first["provider"], first["course"]) == (
        "demo",
        "demo-earned-time",
        "demo-tablet",
        "demo-fin-lit",
    )
    sample = json.loads((home / "var" / "demo-completion.json").read_text())
    assert sample["person_id"] == "100001"
    assert sample["content_hours"] == 6.5
    assert sample["completed_at"].endswith(("-06:00", "-07:00"))  # America/Denver

    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "coursegate", "serve", "--port", str(port)],
            env=env,
            cwd=home,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_ready(base, server, log_path)
        assigned = _bash(first["assign_command"], elsewhere)
        assert [e["status"] for e in assigned["enrollments"]] == ["assigned"] * 3, assigned
        again = _bash(first["assign_command"], elsewhere)
        assert again["error"] == "ENROLLMENT_EXISTS", again
        sent = _bash(first["send_command"], elsewhere)
        assert sent["status"] == "accepted", sent
        assert sent["credits_total"] == 1
        credits = _bash(first["credits_command"], elsewhere)
        assert (credits["hours_total"], credits["credits_total"]) == ("6.50", 1)
        assert credits["program"] == "demo-earned-time"
        listed = _bash(first["enrollments_command"], elsewhere)["data"]
        by_person = {e["person_id"]: e["status"] for e in listed}
        assert by_person[first["person_id"]] == "completed", listed
        assert sorted(by_person.values()) == ["assigned", "assigned", "completed"]

        # Again, while the server runs: everything is reused, and a new key works.
        second = demo()
        assert second["api_key"] != first["api_key"]
        assert second["person_id"] == first["person_id"]
        who = httpx.get(
            f"{base}/v1/whoami", headers={"Authorization": f"Bearer {second['api_key']}"}
        )
        assert who.status_code == 200
        assert who.json()["tenant"]["id"] == "demo"
        assert _bash(second["credits_command"], elsewhere)["credits_total"] == 1
        # The printed sign-in opens the console; the first run's password no longer does.
        assert _console_sign_in(second) == 303
        assert _console_sign_in({**second, "console_password": first["console_password"]}) == 401
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _console_sign_in(demo: dict[str, Any]) -> int:
    """Sign in to the console with what the demo printed, as the login form does."""
    with httpx.Client(base_url=demo["console_url"]) as browser:
        form = browser.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token is not None
        answer = browser.post(
            "/login",
            data={
                "organisation": demo["console_organisation"],
                "email": demo["console_email"],
                "password": demo["console_password"],
                "csrf_token": token.group(1),
            },
        )
        if answer.status_code == 303:
            assert browser.get(demo["console_url"]).status_code == 200
        return answer.status_code


def test_demo_again_adds_no_seats_and_refuses_a_course_it_cannot_use(settings: Settings) -> None:
    """A second run orders the same seats again (none added); a demo course that has
    expired is reported rather than silently reused, and that run leaves nothing."""
    ok(run_cli(settings, "demo", "--json"))
    ok(run_cli(settings, "demo", "--json"))

    async def seats_and_keys() -> tuple[int, int]:
        database = Database(settings.resolved_database_url, pool_size=1)
        try:
            async with database.transaction() as session:
                seats = await session.scalar(
                    text("SELECT count(*) FROM seats WHERE tenant_id = 'demo'")
                )
                keys = await session.scalar(
                    text("SELECT count(*) FROM api_keys WHERE tenant_id = 'demo'")
                )
                return int(seats or 0), int(keys or 0)
        finally:
            await database.dispose()

    async def expire_course() -> None:
        database = Database(settings.resolved_database_url, pool_size=1)
        try:
            async with database.transaction() as session:
                await session.execute(
                    text("UPDATE courses SET status = 'expired' WHERE id = 'demo-fin-lit'")
                )
        finally:
            await database.dispose()

    assert asyncio.run(seats_and_keys()) == (10, 2)
    asyncio.run(expire_course())
    refused = run_cli(settings, "demo")
    assert refused.returncode == 1
    assert "DEMO_CONFLICT: course demo-fin-lit exists and is expired;" in refused.stderr
    assert asyncio.run(seats_and_keys()) == (10, 2)  # no third key: the run made nothing
