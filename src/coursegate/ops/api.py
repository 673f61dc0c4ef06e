"""`/healthz`, `/readyz` and `/metrics`, served by API and worker processes alike."""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import SQLAlchemyError

from coursegate import migrate
from coursegate.db import Database

router = APIRouter(tags=["operations"])
log = structlog.get_logger(__name__)

READINESS_TIMEOUT_S = 2.0


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up and its event loop answers; says nothing about dependencies."""
    return {"status": "ok"}


READINESS_SCHEMA = {
    "type": "object",
    "required": ["status", "database", "migrations"],
    "properties": {
        "status": {"type": "string", "enum": ["ready", "not_ready"]},
        "database": {"type": "string"},
        "migrations": {"type": "string"},
    },
}


@router.get(
    "/readyz",
    responses={
        200: {"content": {"application/json": {"schema": READINESS_SCHEMA}}},
        503: {
            "description": "Not ready: the database is unreachable or not at this build's head.",
            "content": {"application/json": {"schema": READINESS_SCHEMA}},
        },
    },
)
async def readyz(request: Request) -> JSONResponse:
    """Ready means the database answers and its schema is at this build's head."""
    database: Database = request.app.state.database
    head: str | None = request.app.state.migration_head
    body: dict[str, Any] = {"database": "ok", "migrations": "head"}
    try:
        current = await asyncio.wait_for(
            migrate.current_revision(database.engine), READINESS_TIMEOUT_S
        )
    except (TimeoutError, SQLAlchemyError, OSError) as exc:
        log.warning("readiness_database_unreachable", error_class=type(exc).__name__)
        body["database"] = "unreachable"
        body["migrations"] = "unknown"
        return JSONResponse({"status": "not_ready", **body}, status_code=503)
    if current != head:
        body["migrations"] = f"at {current or 'none'}, expected {head}"
        return JSONResponse({"status": "not_ready", **body}, status_code=503)
    return JSONResponse({"status": "ready", **body})


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "description": "The Prometheus text exposition format.",
            "content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}},
        }
    },
)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
