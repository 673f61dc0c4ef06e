"""The partner of bench/pull.py: a DataPass API serving N validated entries, fast.

Every page the connector asks for (offset a multiple of the page size) is
encoded once at start, so the benchmark measures the connector rather than the
partner: aiohttp on uvloop, no access log, the token endpoint answering any
client-credentials request.

    .venv/bin/python bench/datapass_partner.py --entries 100000 --page-size 100 --port 8097
"""

from __future__ import annotations

import argparse
import json
import uuid
from datetime import UTC, datetime, timedelta

import uvloop
from aiohttp import web

DEFINITION = "api_particulier_cnous"
BASE = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


def entry(n: int) -> dict[str, object]:
    validated = BASE + timedelta(seconds=n)
    stamp = validated.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return {
        "id": n,
        "public_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"datapass/{n}")),
        "type": DEFINITION,
        "state": "validated",
        "form_uid": "api-particulier-cnous-v1",
        "data": {
            "scopes": ["cnous_statut_boursier"],
            "niveau_bourse_min": n % 8,
            "intitule": f"Demande {n}",
        },
        "created_at": stamp,
        "last_submitted_at": stamp,
        "last_validated_at": stamp,
        "habilitations": [{"id": n, "scopes": ["cnous_statut_boursier"]}],
        "organisation": {"siret": f"{n:014d}", "name": f"Organisation {n}"},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--page-size", type=int, default=100)
    args = parser.parse_args()
    entries = [entry(n) for n in range(1, args.entries + 1)]
    pages = {
        offset: json.dumps(entries[offset : offset + args.page_size]).encode()
        for offset in range(0, args.entries + 1, args.page_size)
    }

    async def token(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response(
            {"access_token": uuid.uuid4().hex, "token_type": "Bearer", "expires_in": 3600}
        )

    async def listing(request: web.Request) -> web.Response:
        offset = int(request.query.get("offset", "0"))
        limit = int(request.query.get("limit", str(args.page_size)))
        body = pages.get(offset) if limit == args.page_size else None
        if body is None:
            body = json.dumps(entries[offset : offset + limit]).encode()
        return web.Response(body=body, content_type="application/json")

    async def ready(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/ready", ready)
    app.router.add_post("/oauth/token", token)
    app.router.add_get("/api/authorization_requests", listing)
    uvloop.install()
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
