"""The console under test: a real HTTP server on a loopback port, driven by Debian's Chromium
through Playwright (never a downloaded browser), with axe-core run inside each page.

The server runs the application in a thread of its own with its own database
connections (an async engine belongs to one event loop); it shares the test's
database and frozen clock, so a test arranges data through the services and
moves time instead of sleeping.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from playwright.async_api import Browser, Page, async_playwright

from coursegate import durable
from coursegate.app import create_app
from coursegate.config import Settings
from coursegate.db import Database
from coursegate.kit.clock import FrozenClock
from coursegate.operators.service import OperatorService
from tests.conftest import browser_tally
from tests.servers import free_port

CHROMIUM = os.environ.get("COURSEGATE_TEST_CHROMIUM", "/usr/bin/chromium")
REQUIRE_BROWSER = os.environ.get("COURSEGATE_TEST_REQUIRE_BROWSER", "") in {"1", "true", "yes"}
AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = (
    Path(os.environ.get("COURSEGATE_TEST_SCREENSHOTS", ""))
    if os.environ.get("COURSEGATE_TEST_SCREENSHOTS")
    else None
)
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def _missing(reason: str) -> None:
    browser_tally["missing"] = reason
    if REQUIRE_BROWSER:
        pytest.fail(reason)
    pytest.skip(reason)


@dataclass
class LiveConsole:
    url: str
    database: Database
    clock: FrozenClock

    async def operator(self, tenant: str, email: str, role: str) -> str:
        """An operator made through the CLI's service; returns its generated password."""
        async with self.database.transaction() as session:
            _, password = await OperatorService(session, self.clock).create(tenant, email, role)
        return password


class _ServerThread(threading.Thread):
    def __init__(
        self, settings: Settings, clock: FrozenClock, port: int, role: durable.Role | None
    ) -> None:
        super().__init__(daemon=True)
        app = create_app(settings, clock=clock, role=role)
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on"
        )
        self.server = uvicorn.Server(config)

    def run(self) -> None:
        asyncio.run(self.server.serve())


@contextmanager
def console_server(
    settings: Settings, database: Database, clock: FrozenClock, role: durable.Role | None = None
) -> Iterator[LiveConsole]:
    """The application on a free loopback port: `coursegate api` by default, or with
    `role=Role.SERVE` the whole of `coursegate serve` (workers and durable runs too)."""
    port = free_port()
    thread = _ServerThread(settings, clock, port, role)
    thread.start()
    deadline = time.monotonic() + 30
    while not thread.server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the console's server did not start")
        time.sleep(0.02)
    try:
        yield LiveConsole(url=f"http://127.0.0.1:{port}", database=database, clock=clock)
    finally:
        thread.server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture
def live_serve(settings: Settings, database: Database, clock: FrozenClock) -> Iterator[LiveConsole]:
    """`coursegate serve` on a free loopback port: durable execution launched in the server,
    so an assignment's saga runs (with the fake partners under the settings' `var_dir`)."""
    with console_server(settings, database, clock, durable.Role.SERVE) as live:
        yield live


@pytest.fixture
def live_console(
    settings: Settings, database: Database, clock: FrozenClock
) -> Iterator[LiveConsole]:
    """`coursegate api` (no workers) on a free loopback port, on the test's database."""
    with console_server(settings, database, clock) as live:
        yield live


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not os.path.exists(CHROMIUM):  # noqa: ASYNC240 (a stat, once per test)
        _missing(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        yield page
    finally:
        await context.close()
    # A CSP violation or a script error is a defect of the page, not noise; a refused
    # request ("Failed to load resource: … 403") is what a test asserts on its own.
    assert not [e for e in errors if not e.startswith("Failed to load resource")], errors


async def sign_in(page: Page, url: str, organisation: str, email: str, password: str) -> None:
    await page.goto(f"{url}/console/login")
    await page.get_by_label("Organisation").fill(organisation)
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_load_state()


async def check_page(page: Page, name: str) -> None:
    """No accessibility violation of impact serious or critical (axe-core), and a screenshot
    when COURSEGATE_TEST_SCREENSHOTS names a folder."""
    browser_tally["used"] += 1
    if SCREENSHOTS is not None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    if not AXE.exists():
        _missing(f"axe-core not installed at {AXE} (make installs it with npm)")
    await page.evaluate(AXE.read_text())
    result: dict[str, Any] = await page.evaluate(
        "async () => await axe.run(document, {resultTypes: ['violations']})"
    )
    serious = [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}"
        for v in result["violations"]
        if v["impact"] in {"serious", "critical"}
    ]
    assert not serious, serious
