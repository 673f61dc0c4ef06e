"""The framework's own refusals carry SPEC §0's codes, never one of their own."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi import APIRouter, HTTPException

from coursegate.app import create_app
from coursegate.config import Settings

router = APIRouter()


@router.get("/test/refusal/{status}")
async def refusal(status: int) -> None:
    raise HTTPException(status_code=status, detail="refused by the framework")


async def test_framework_refusals_map_to_spec_codes(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'unused.db'}", var_dir=tmp_path, _env_file=None
    )
    app = create_app(settings, extra_routers=[router])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        expected = {
            400: {"error": "INVALID_JSON"},
            404: {"error": "NOT_FOUND"},
            416: {
                "error": "VALIDATION_ERROR",
                "message": "refused by the framework",
                "details": [{"field": "request", "constraint": "invalid"}],
            },
            503: {"error": "INTERNAL_ERROR", "message": "refused by the framework"},
        }
        for status, body in expected.items():
            response = await client.get(f"/test/refusal/{status}")
            assert response.status_code == status
            assert response.json() == body
    await app.state.database.dispose()
