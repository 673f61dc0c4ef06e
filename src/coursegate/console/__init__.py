"""The operator console (SPEC §9): server-rendered pages at /console, one module per area."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from coursegate.console import (
    activity,
    completions,
    connectors,
    courses,
    enrollment_actions,
    learners,
    login,
    overview,
    settings,
    webhooks,
)
from coursegate.console.web import PREFIX, STATIC_DIR, SecurityHeaders, install_error_pages

__all__ = ["SecurityHeaders", "install"]

ROUTERS = (
    login.router,
    overview.router,
    learners.router,
    completions.router,
    webhooks.router,
    connectors.router,
    courses.router,
    enrollment_actions.router,
    activity.router,
    settings.router,
)


def install(app: FastAPI) -> None:
    """Mount the console on an application whose API routes and error handlers are in place."""
    for router in ROUTERS:
        app.include_router(router)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=STATIC_DIR), name="console-static")
    install_error_pages(app)
