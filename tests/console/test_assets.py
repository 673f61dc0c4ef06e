"""Every asset the console needs is served by coursegate itself (offline networks), and the
vendored htmx is exactly the published release."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import httpx

import coursegate.console

HTMX_DIR = Path(coursegate.console.__file__).parent / "static" / "htmx-2.0.11"


def test_the_vendored_htmx_is_the_published_release_unchanged() -> None:
    recorded = re.search(
        r"sha256 of `htmx.min.js`: `([0-9a-f]{64})`", (HTMX_DIR / "SOURCE.md").read_text()
    )
    assert recorded is not None
    assert hashlib.sha256((HTMX_DIR / "htmx.min.js").read_bytes()).hexdigest() == recorded.group(1)
    assert (HTMX_DIR / "LICENSE").read_text().startswith("Zero-Clause BSD")


async def test_the_login_page_loads_only_assets_of_its_own(client: httpx.AsyncClient) -> None:
    page = await client.get("/console/login")
    assert page.status_code == 200
    references = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert references, "the page references no asset at all"
    for ref in references:
        assert ref.startswith(("/console", "#")), ref
        if "/static/" in ref:
            asset = await client.get(ref)
            assert asset.status_code == 200, ref
    served = await client.get("/console/static/htmx-2.0.11/htmx.min.js")
    assert served.content == (HTMX_DIR / "htmx.min.js").read_bytes()
    assert "javascript" in served.headers["content-type"]
