"""Ceiling A of bench/inbound.py: the fastest FastAPI endpoint on this machine.

One `POST /hello` that returns `{"ok": true}`, served by uvicorn with the same server
settings as `coursegate api` (src/coursegate/cli.py `_serve`): `log_config=None`,
`access_log=False`, `server_header=False`, uvicorn's own choice of loop (uvloop) and
httptools under the server's guard (kit/httpserver.py) with its default limits; with
`--plain`, uvicorn's own httptools protocol, as `bench/inbound.py --plain-uvicorn` runs it.

    .venv/bin/python bench/hello.py --port 8099 [--plain]
"""

from __future__ import annotations

import argparse

import uvicorn
from fastapi import FastAPI

from coursegate.kit.httpserver import HttpLimits, guarded_protocol

app = FastAPI()


@app.post("/hello")
async def hello() -> dict[str, bool]:
    return {"ok": True}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--plain", action="store_true", help="uvicorn's protocol, unguarded")
    args = parser.parse_args()
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_config=None,
        access_log=False,
        server_header=False,
        http="httptools" if args.plain else guarded_protocol(HttpLimits()),
    )


if __name__ == "__main__":
    main()
