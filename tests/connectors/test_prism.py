"""A `oneroster` connector against Stoplight Prism serving 1EdTech's own OneRoster 1.2
description: data nobody here wrote, shaped only by the standard.

Prism (from the npm registry, run with the machine's Node.js) answers the description's
paths; the token comes from the fake partner's token endpoint, since the description has
none. Static mode serves what the schemas describe (one record of each, every field
filled); dynamic mode invents records, and, as a mock does, the same ones at every offset.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from coursegate.config import Settings
from coursegate.connectors.schemas import ROSTER_PATHS, ConnectorCreate
from coursegate.connectors.service import ConnectorService
from coursegate.db import Database
from coursegate.kit.clock import FrozenClock
from tests.conftest import prism_tally
from tests.connectors.conftest import SECRET_ENV
from tests.connectors.fake_partners import ONEROSTER_DESCRIPTION, OneRosterFake
from tests.connectors.test_cli import pull, summary
from tests.connectors.test_oneroster import stores
from tests.servers import free_port

PRISM = Path(__file__).parent / "node_modules" / ".bin" / "prism"
REQUIRE_NODE = os.environ.get("COURSEGATE_TEST_REQUIRE_NODE", "") in {"1", "true", "yes"}
V1P2 = ROSTER_PATHS["v1p2"]


def _missing(reason: str) -> None:
    prism_tally["missing"] = reason
    if REQUIRE_NODE:
        pytest.fail(reason)
    pytest.skip(reason)


def _prism(tmp_path: Path, *flags: str) -> Iterator[str]:
    """Prism on a free loopback port serving the description mounted at 1.2's path (the
    description's own server is a developer's tunnel); yields the server's root URL."""
    if shutil.which("node") is None:
        _missing("Node.js not found: the OneRoster run against Prism is skipped")
    if not PRISM.exists():
        _missing(f"Prism not installed at {PRISM} (make installs it with npm)")
    description = json.loads(ONEROSTER_DESCRIPTION.read_text())
    description["paths"] = {V1P2 + path: item for path, item in description["paths"].items()}
    mounted = tmp_path / "oneroster.json"
    mounted.write_text(json.dumps(description))
    port = free_port()
    log = (tmp_path / "prism.log").open("wb")
    process = subprocess.Popen(
        [str(PRISM), "mock", "-h", "127.0.0.1", "-p", str(port), *flags, str(mounted)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    root = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                probe = httpx.get(f"{root}{V1P2}/users", headers={"Authorization": "Bearer x"})
                if probe.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError((tmp_path / "prism.log").read_text(errors="replace"))
            time.sleep(0.2)
        prism_tally["used"] += 1
        yield root
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@pytest.fixture
def prism_static(tmp_path: Path) -> Iterator[str]:
    yield from _prism(tmp_path)


@pytest.fixture
def prism_dynamic(tmp_path: Path) -> Iterator[str]:
    yield from _prism(tmp_path, "--dynamic", "--seed", "2")


@pytest.fixture
def tokens() -> Iterator[OneRosterFake]:
    with OneRosterFake() as partner:
        yield partner


async def _connector(
    database: Database, clock: FrozenClock, tokens: OneRosterFake, root: str
) -> None:
    body = ConnectorCreate.model_validate(
        {
            "id": "sis",
            "kind": "oneroster",
            "config": {
                "token_url": tokens.token_url,
                "api_base_url": root,
                "client_id": tokens.client_id,
                "client_secret_ref": f"env:{SECRET_ENV}",
            },
        }
    )
    async with database.transaction() as session:
        service = ConnectorService(session, clock, stores(tokens), allow_private=True)
        await service.create("acme", body)


async def test_a_run_against_the_description_completes_and_rejects_nothing(
    settings: Settings,
    database: Database,
    clock: FrozenClock,
    tokens: OneRosterFake,
    prism_static: str,
    acme: str,
) -> None:
    """One user (an aide), one class, one enrollment (an administrator), all schema-valid:
    nobody to enroll, nothing a person must look at, exit 0."""
    await _connector(database, clock, tokens, prism_static)
    result = await asyncio.to_thread(pull, settings, tokens, "pull", "sis", "--tenant", "acme")
    assert result.returncode == 0, result.stderr
    line = summary(result)
    assert "pages=3 created=0 skipped=3 rejected=0" in line, line


async def test_invented_data_served_at_every_offset_ends_the_run_clearly(
    settings: Settings,
    database: Database,
    clock: FrozenClock,
    tokens: OneRosterFake,
    prism_dynamic: str,
    acme: str,
) -> None:
    """Prism's invented records come back at every offset while `X-Total-Count` claims
    millions: the run stops at the first repeated page and says why (exit 1), instead of
    asking for millions of pages."""
    await _connector(database, clock, tokens, prism_dynamic)
    result = await asyncio.to_thread(pull, settings, tokens, "pull", "sis", "--tenant", "acme")
    assert result.returncode == 1, result.stdout
    assert "the partner ignores offset" in result.stderr
