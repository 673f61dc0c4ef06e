"""What every console page shares: templates, the signed-in operator, roles, CSRF, the
record of actions, and HTML answers for refusals.

Pages read in the request's one transaction (`Session`). An action runs in the
same transaction and is recorded there; when it is refused, the transaction
rolls back and the refusal is recorded afterwards in a transaction of its own
(see `recorded` and `install_error_pages`), so the Activity page shows both.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from ipaddress import ip_address
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import structlog
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from coursegate.kit.clock import Clock
from coursegate.kit.errors import (
    DATABASE_ERRORS,
    DatabaseUnavailable,
    DomainError,
    Forbidden,
    failure_of,
)
from coursegate.operators.roles import Role
from coursegate.operators.service import Current, OperatorService, Throttled, csrf_matches
from coursegate.tenancy.repository import TenantRepository
from coursegate.web import ClockDep, Session, clock, database

log = structlog.get_logger(__name__)

PREFIX = "/console"
SESSION_COOKIE = "cg_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"
HTMX_PATH = f"{PREFIX}/static/htmx-2.0.11/htmx.min.js"

SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        b"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"x-content-type-options", b"nosniff"),
    (b"cache-control", b"no-store"),
]

# Autoescaping on for every template, whatever its name: a learner called `<script>` is text.
templates = Jinja2Templates(
    env=Environment(loader=FileSystemLoader(TEMPLATES_DIR), autoescape=True, enable_async=False)
)


def _hours(value: Decimal | None) -> str:
    return "" if value is None else f"{value:.2f}"


def _when(value: datetime | None, zone: str = "UTC") -> str:
    if value is None:
        return ""
    return value.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


def when_seconds(value: datetime | None, zone: str = "UTC") -> str:
    """Attempts and retries seconds apart must not read as the same minute."""
    if value is None:
        return ""
    return value.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S")


templates.env.filters["hours"] = _hours
templates.env.filters["when"] = _when
templates.env.filters["when_seconds"] = when_seconds


class SignInRequired(Exception):
    """No live session: a page redirects to the sign-in page, an htmx request is told to."""


@dataclass(slots=True)
class Console:
    """The signed-in operator of a request, with what pages need to render for them."""

    current: Current
    timezone: str

    @property
    def tenant_id(self) -> str:
        return self.current.tenant_id

    @property
    def role(self) -> Role:
        return self.current.role

    def can(self, role: str) -> bool:
        return self.role.allows(Role(role))


async def _console_of(request: Request, session: AsyncSession, now: Clock) -> Console:
    current = await OperatorService(session, now).current(request.cookies.get(SESSION_COOKIE, ""))
    if current is None:
        raise SignInRequired()
    tenant = await TenantRepository(session).get(current.tenant_id)
    console = Console(current=current, timezone=tenant.timezone if tenant else "UTC")
    request.state.console = console
    return console


async def signed_in(request: Request, session: Session, now: ClockDep) -> Console:
    """The operator, read in the request's transaction (which the page then reads in)."""
    return await _console_of(request, session, now)


async def signed_in_briefly(request: Request, now: ClockDep) -> Console:
    """The same in a transaction of its own that ends at once: for actions that run their
    own transactions (SQLite has one connection, and they need it)."""
    async with database(request).transaction() as session:
        return await _console_of(request, session, now)


def requires(
    role: Role, *, acting: bool, brief: bool = False
) -> Callable[..., Coroutine[Any, Any, Console]]:
    """A dependency: the signed-in operator, refused with 403 below `role`; an acting
    (state-changing) request must also carry the session's CSRF token."""
    source = signed_in_briefly if brief else signed_in

    # A default, not `Annotated`: the annotation is a string (postponed evaluation) and
    # could not name `source`, a local.
    async def check(request: Request, console: Console = Depends(source)) -> Console:
        if not console.role.allows(role):
            raise Forbidden(f"this needs the {role} role")
        if acting:
            await check_csrf(request, console)
        return console

    return check


async def check_csrf(request: Request, console: Console) -> None:
    """A state-changing request carries the session's token, in a header (htmx) or a field."""
    presented = request.headers.get(CSRF_HEADER)
    if presented is None and request.method == "POST":
        form = await request.form()
        value = form.get(CSRF_FIELD)
        presented = value if isinstance(value, str) else None
    if not csrf_matches(console.current, presented):
        raise Forbidden("the form's security token is missing or stale: reload the page")


Viewer = Annotated[Console, Depends(requires(Role.VIEWER, acting=False))]
"""Reads any signed-in operator may do."""
Actor = Annotated[Console, Depends(requires(Role.OPERATOR, acting=True))]
"""Actions on objects (resend, replay, assign, …): operators and admins, with the token."""
Admin = Annotated[Console, Depends(requires(Role.ADMIN, acting=True))]
"""Changes to the tenant's set-up: admins, with the token."""
AdminViewer = Annotated[Console, Depends(requires(Role.ADMIN, acting=False))]
"""Admin pages that only read (GET): the role is checked, no token is needed."""
BriefActor = Annotated[Console, Depends(requires(Role.OPERATOR, acting=True, brief=True))]
"""An operator's action that runs transactions of its own (the request holds none)."""
SignedInActor = Annotated[Console, Depends(requires(Role.VIEWER, acting=True))]
"""What any signed-in operator may do that changes state: signing out."""


def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    console: Console | None = getattr(request.state, "console", None)
    full = {"console": console, "nav": NAVIGATION, "htmx_path": HTMX_PATH, **context}
    if console is not None:
        full.setdefault("zone", console.timezone)
        full["csrf_token"] = console.current.csrf_token
    return templates.TemplateResponse(request, template, full, status_code=status, headers=headers)


NAVIGATION = (
    ("Overview", f"{PREFIX}", Role.VIEWER),
    ("Learners", f"{PREFIX}/learners", Role.VIEWER),
    ("Completions", f"{PREFIX}/completions", Role.VIEWER),
    ("Webhooks", f"{PREFIX}/webhooks", Role.VIEWER),
    ("Connectors", f"{PREFIX}/connectors", Role.VIEWER),
    ("Courses", f"{PREFIX}/courses", Role.VIEWER),
    ("Activity", f"{PREFIX}/activity", Role.VIEWER),
    ("Settings", f"{PREFIX}/settings", Role.ADMIN),
)


# The record of actions


@dataclass(slots=True)
class PendingAction:
    verb: str
    object_type: str
    object_id: str
    detail: dict[str, object] = field(default_factory=dict)


@asynccontextmanager
async def recorded(
    request: Request,
    session: AsyncSession | None,
    console: Console,
    verb: str,
    object_type: str,
    object_id: str | uuid.UUID,
) -> AsyncIterator[PendingAction]:
    """Record an action as `ok` when the block succeeds, in the request's transaction (or,
    with `session=None`, in one of its own); a refusal is left for the error page to
    record once the rolled-back transaction is gone."""
    action = PendingAction(verb, object_type, str(object_id))
    request.state.pending_action = action
    yield action
    request.state.pending_action = None
    if session is None:
        async with database(request).transaction() as own:
            await _record(request, own, console, action, "ok")
    else:
        await _record(request, session, console, action, "ok")


async def _record(
    request: Request,
    session: AsyncSession,
    console: Console,
    action: PendingAction,
    outcome: str,
) -> None:
    await OperatorService(session, clock(request)).record(
        console.current,
        action.verb,
        action.object_type,
        action.object_id,
        outcome,
        action.detail or None,
    )


async def _record_refusal(request: Request, outcome: str, error: str) -> None:
    action: PendingAction | None = getattr(request.state, "pending_action", None)
    console: Console | None = getattr(request.state, "console", None)
    if action is None or console is None:
        return
    request.state.pending_action = None
    action.detail = {**action.detail, "error": error}
    async with database(request).transaction() as session:
        await _record(request, session, console, action, outcome)


async def record_refusal(request: Request, error: str) -> None:
    """Record the pending action as `refused`, in a transaction of its own: for a page that
    answers a refusal itself (a form shown again with what was wrong) rather than raising
    it to the error pages, which would record it."""
    await _record_refusal(request, "refused", error)


# Answers to refusals, as pages (or fragments, for htmx)


def is_console(request: Request) -> bool:
    path = request.url.path
    return path == PREFIX or path.startswith(PREFIX + "/")


def error_page(
    request: Request,
    status: int,
    title: str,
    message: str,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    template = "error_fragment.html" if request.headers.get("hx-request") else "error.html"
    context = {"title": title, "message": message}
    return render(request, template, context, status=status, headers=headers)


_TITLES = {
    400: "Not accepted",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed",
    409: "Refused",
    413: "Too large",
    429: "Too many attempts",
    503: "Database unavailable",
}
UNAVAILABLE_MESSAGE = (
    "The database cannot be reached just now. Nothing saved before was lost; "
    "try again in a few seconds."
)


def install_error_pages(app: FastAPI) -> None:
    """Console paths answer refusals as HTML; every other path keeps the API's JSON handlers."""
    api_handlers = dict(app.exception_handlers)

    async def on_error(request: Request, exc: Exception) -> Response:
        if not is_console(request):
            handler = api_handlers.get(type(exc)) or _api_handler_for(api_handlers, exc)
            response: Response = await handler(request, exc)
            return response
        if isinstance(exc, SignInRequired):
            if request.headers.get("hx-request"):
                return Response(status_code=401, headers={"HX-Redirect": f"{PREFIX}/login"})
            return RedirectResponse(f"{PREFIX}/login", status_code=303)
        if isinstance(exc, DatabaseUnavailable):
            # Nothing can be recorded while the database is down.
            return unavailable_page(request, exc)
        if isinstance(exc, DomainError):
            await _record_refusal(request, "refused", exc.code)
            message = exc.message or _details_message(exc) or exc.code
            return error_page(request, exc.status, _TITLES.get(exc.status, "Refused"), message)
        if isinstance(exc, RequestValidationError):
            await _record_refusal(request, "refused", "VALIDATION_ERROR")
            return error_page(request, 400, "Not accepted", _validation_message(exc))
        if isinstance(exc, StarletteHTTPException):
            status = exc.status_code
            return error_page(request, status, _TITLES.get(status, "Error"), str(exc.detail))
        failure = failure_of(exc, request.url.path)
        if isinstance(failure, DatabaseUnavailable):
            return unavailable_page(request, failure)
        await _record_refusal(request, "failed", failure.code)
        return error_page(request, 500, "Something went wrong", "The error was logged.")

    for exc_class in (
        SignInRequired,
        DomainError,
        RequestValidationError,
        StarletteHTTPException,
        *DATABASE_ERRORS,
        Exception,
    ):
        app.add_exception_handler(exc_class, on_error)


def unavailable_page(request: Request, error: DatabaseUnavailable) -> HTMLResponse:
    """The database is down: a page that says so and when to retry, with the header a
    browser or a script may honour."""
    return error_page(
        request, error.status, _TITLES[error.status], UNAVAILABLE_MESSAGE, error.headers()
    )


def _details_message(exc: DomainError) -> str:
    """A refusal without a message told by its details (`field: why`), as people read it."""
    parts = []
    for detail in exc.details or ():
        if isinstance(detail, dict) and "field" in detail:
            why = detail.get("message") or detail.get("constraint", "not accepted")
            parts.append(f"{detail['field']}: {why}")
    return "; ".join(parts)


def _api_handler_for(handlers: dict[Any, Any], exc: Exception) -> Any:
    for cls in type(exc).__mro__:
        if cls in handlers:
            return handlers[cls]
    raise exc


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ())[1:]) or "input"
        parts.append(f"{where}: {err.get('msg')}")
    return "; ".join(parts) or "the input was not accepted"


# Headers and cookies


class SecurityHeaders:
    """Every console response carries a strict CSP (no inline script or style), refuses framing
    and is never cached; the API's responses are left as they are."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not (path == PREFIX or path.startswith(PREFIX + "/")):
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)


def cookie_is_secure(request: Request) -> bool:
    """`Secure` except on plain http from a loopback address, where a browser would drop it."""
    if request.url.scheme == "https":
        return True
    host = request.client.host if request.client else ""
    try:
        return not ip_address(host).is_loopback
    except ValueError:
        return host != "localhost"


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def retry_message(exc: Throttled, zone: str = "UTC") -> str:
    return f"Too many failed sign-ins. Try again after {_when(exc.retry_at, zone)} ({zone})."


__all__ = [
    "PREFIX",
    "Actor",
    "Admin",
    "AdminViewer",
    "Console",
    "Session",
    "Viewer",
    "record_refusal",
    "recorded",
    "render",
]
