"""create_app(): routers, middleware and lifespan of the HTTP processes."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import structlog
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute

from coursegate import __version__, console, durable, migrate, web
from coursegate.completions.api import receive_completion
from coursegate.completions.api import router as completions_router
from coursegate.completions.fastpath import InboundFastPath
from coursegate.completions.inbound import InboundGateway
from coursegate.completions.verify import KeySecrets
from coursegate.config import Settings
from coursegate.connectors.api import authorizations_router
from coursegate.connectors.api import router as connectors_router
from coursegate.connectors.schedule import connector_ticks
from coursegate.console.courses import ASSIGN_ROUTE_PATTERN as CSV_ASSIGN_ROUTE_PATTERN
from coursegate.courses.api import router as courses_router
from coursegate.credits.api import router as credits_router
from coursegate.db import Database
from coursegate.enrollments.adapters import adapters_from_settings
from coursegate.enrollments.api import ASSIGN_ROUTE_PATTERN
from coursegate.enrollments.api import router as enrollments_router
from coursegate.enrollments.sweeper import sweep_lifecycle
from coursegate.events.api import router as events_router
from coursegate.kit import contract
from coursegate.kit.clock import Clock, SystemClock
from coursegate.kit.errors import install_error_handlers
from coursegate.kit.http import BodyLimitMiddleware, JsonDepthMiddleware, ObservabilityMiddleware
from coursegate.kit.secrets import CachedResolver, SecretBox, default_stores
from coursegate.ops.api import router as ops_router
from coursegate.people.api import router as people_router
from coursegate.programs.api import router as programs_router
from coursegate.providers.api import router as providers_router
from coursegate.tenancy.api import router as tenancy_router
from coursegate.webhooks.api import router as webhooks_router
from coursegate.workers import BackgroundWork

log = structlog.get_logger(__name__)

# Workflows and schedules register when their module is imported, before launch.
DURABLE_WORKFLOWS = (sweep_lifecycle, connector_ticks)

API_ROUTERS: Sequence[APIRouter] = (
    tenancy_router,
    programs_router,
    people_router,
    credits_router,
    providers_router,
    courses_router,
    enrollments_router,
    completions_router,
    webhooks_router,
    events_router,
    connectors_router,
    authorizations_router,
)
GC_YOUNG_THRESHOLD = 10_000
# Routes that take batches get the larger body limit (SPEC §0): the API's assignment, and
# the console's upload of a Students CSV for one.
BATCH_ROUTES: Sequence[str] = (ASSIGN_ROUTE_PATTERN, CSV_ASSIGN_ROUTE_PATTERN)


def tune_garbage_collector() -> None:
    """Move everything alive at start-up out of the collector's sight, and collect the
    youngest generation less often.

    Measured on the inbound benchmark: full collections that walk every module,
    class and route object made up most of the p99 tail. Frozen objects are
    never freed, which is right for what lives as long as the process anyway.
    """
    gc.collect()
    gc.freeze()
    _, second, third = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, second, third)


def inbound_route() -> APIRoute:
    for route in completions_router.routes:
        if isinstance(route, APIRoute) and route.endpoint is receive_completion:
            return route
    raise RuntimeError("the inbound completions route is not registered")


def create_app(
    settings: Settings | None = None,
    *,
    database: Database | None = None,
    clock: Clock | None = None,
    role: durable.Role | None = None,
    api: bool = True,
    extra_routers: Sequence[APIRouter] = (),
) -> FastAPI:
    """Build an HTTP application.

    `role` launches durable execution in the lifespan (`serve` and `worker`
    processes); `api=False` leaves out the admin and partner routes (a worker
    serves only its operational endpoints). Tests pass their own database and
    clock.
    """
    settings = settings or Settings()
    owns_database = database is None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        background: BackgroundWork | None = None
        if role is not None:
            await durable.launch(
                settings, app.state.database, role, app.state.clock, app.state.adapters
            )
        if role in (durable.Role.SERVE, durable.Role.WORKER):
            background = BackgroundWork(
                settings, app.state.database, app.state.clock, app.state.secret_box
            )
            background.start()
        tune_garbage_collector()
        log.info("started", role=str(role or "api"), version=__version__)
        try:
            yield
        finally:
            if background is not None:
                await background.stop()
            if role is not None:
                durable.shutdown()
            enqueuer: durable.Enqueuer | None = app.state.enqueuer
            if enqueuer is not None:
                enqueuer.close()
            if owns_database:
                await app.state.database.dispose()

    app = FastAPI(
        title="coursegate",
        version=__version__,
        lifespan=lifespan,
        docs_url="/docs",
        openapi_url="/openapi.json",
    )
    app.state.settings = settings
    app.state.database = database or Database(
        settings.resolved_database_url, pool_size=settings.db_pool_size
    )
    app.state.clock = clock or SystemClock()
    app.state.migration_head = migrate.head_revision()
    app.state.enqueuer = durable.Enqueuer(settings) if api else None
    app.state.secret_box = SecretBox(settings.master_keys())
    app.state.adapters = adapters_from_settings(settings)
    app.state.secret_stores = default_stores()
    app.state.inbound = InboundGateway(
        app.state.database,
        app.state.clock,
        KeySecrets(app.state.secret_box, CachedResolver(app.state.secret_stores, app.state.clock)),
    )

    install_error_handlers(app)
    app.include_router(ops_router)
    if api:
        for router in API_ROUTERS:
            app.include_router(router)
        console.install(app)
    for router in extra_routers:
        app.include_router(router)
    contract.install(app, web.KNOWN_DEPENDENCIES)

    # Innermost first; the last added is the outermost: observe everything,
    # including refusals of oversized bodies, and serve the inbound hot path
    # inside both, ahead of the JSON depth check (its signature comes first).
    app.add_middleware(JsonDepthMiddleware)
    if api:
        app.add_middleware(InboundFastPath, route=inbound_route(), state=app.state)
    app.add_middleware(BodyLimitMiddleware, batch_routes=BATCH_ROUTES)
    app.add_middleware(ObservabilityMiddleware, access_log=settings.access_log)
    if api:
        # Outermost, so that even a refusal made before routing carries the console's headers.
        app.add_middleware(console.SecurityHeaders)
    return app
