"""The console as people use it: a real browser signing in and reading every page."""

from __future__ import annotations

from playwright.async_api import Page, expect

from tests.console.conftest import LiveConsole, check_page, sign_in


async def test_admin_signs_in_and_every_page_renders(
    live_console: LiveConsole, page: Page, acme: str
) -> None:
    password = await live_console.operator("acme", "admin@acme.test", "admin")
    await sign_in(page, live_console.url, "acme", "admin@acme.test", password)
    await expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    await expect(page.get_by_role("img", name="Completions per day")).to_be_visible()
    await check_page(page, "overview")
    for name in ("Activity", "Settings"):
        await page.get_by_role("link", name=name, exact=True).click()
        await expect(page.get_by_role("heading", name=name, exact=True)).to_be_visible()
        await check_page(page, name.lower())
