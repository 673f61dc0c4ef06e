"""The receiver of bench/delivery.py: answers every POST with 200 at once.

aiohttp's server on uvloop, no access log, no checks: the cheapest receiver that still speaks
HTTP/1.1 with keep-alive, so that the benchmark measures the sender.

    .venv/bin/python bench/receiver.py --port 8098
"""

from __future__ import annotations

import argparse

import uvloop
from aiohttp import web


async def ok(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(text="ok")


async def healthz(_: web.Request) -> web.Response:
    return web.Response(text="ok")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_post("/{tail:.*}", ok)
    uvloop.install()
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
