"""`coursegate api` on uvicorn's own httptools protocol, without the server's guard
(kit/httpserver.py): what `bench/inbound.py --plain-uvicorn` compares the guard against.

    .venv/bin/python bench/plain_api.py api --port 8000
"""

from __future__ import annotations

from coursegate.cli.main import main
from coursegate.kit import httpserver


def _plain(_: httpserver.HttpLimits) -> str:
    return "httptools"


httpserver.guarded_protocol = _plain  # type: ignore[assignment]

if __name__ == "__main__":
    main()
