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


async def test_a_viewer_sees_no_control_it_may_not_use(
    live_console: LiveConsole, page: Page, acme: str
) -> None:
    password = await live_console.operator("acme", "viewer@acme.test", "viewer")
    await sign_in(page, live_console.url, "acme", "viewer@acme.test", password)
    navigation = page.get_by_role("navigation", name="Console")
    await expect(navigation.get_by_role("link", name="Activity")).to_be_visible()
    await expect(navigation.get_by_role("link", name="Settings")).to_have_count(0)
    response = await page.goto(f"{live_console.url}/console/settings")
    assert response is not None
    assert response.status == 403
    await expect(page.get_by_role("alert")).to_contain_text("admin")


async def test_sign_out_ends_the_session(live_console: LiveConsole, page: Page, acme: str) -> None:
    password = await live_console.operator("acme", "ann@acme.test", "operator")
    await sign_in(page, live_console.url, "acme", "ann@acme.test", password)
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await page.goto(f"{live_console.url}/console/activity")
    await expect(page).to_have_url(f"{live_console.url}/console/login")


async def test_a_wrong_password_then_too_many(
    live_console: LiveConsole, page: Page, acme: str
) -> None:
    await live_console.operator("acme", "ann@acme.test", "admin")
    for _ in range(5):
        await sign_in(page, live_console.url, "acme", "ann@acme.test", "wrong")
        await expect(page.get_by_role("alert")).to_have_text("Invalid sign-in")
    await sign_in(page, live_console.url, "acme", "ann@acme.test", "wrong")
    await expect(page.get_by_role("alert")).to_contain_text("Too many failed sign-ins")
    await check_page(page, "sign-in-throttled")
