"""Signing in and out (SPEC §9): one answer for every failure, throttled guessing, a
session cookie the page's scripts cannot read."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

import structlog
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from coursegate.console.web import (
    PREFIX,
    SESSION_COOKIE,
    SignedInActor,
    client_address,
    cookie_is_secure,
    render,
    retry_message,
)
from coursegate.operators import passwords
from coursegate.operators.service import OperatorService, Throttled
from coursegate.web import ClockDep, Session

log = structlog.get_logger(__name__)
router = APIRouter()

# Before there is a session, the sign-in form is protected by a double-submit token:
# a random value in a cookie of its own that the form must repeat.
LOGIN_CSRF_COOKIE = "cg_login_csrf"
FIELD_LIMIT = 320


def _login_page(
    request: Request, *, status: int = 200, error: str | None = None, token: str | None = None
) -> HTMLResponse:
    token = token or secrets.token_urlsafe(32)
    response = render(
        request,
        "login.html",
        {"title": "Sign in", "error": error, "login_token": token},
        status=status,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=cookie_is_secure(request),
        path=f"{PREFIX}/login",
    )
    return response


@router.get(f"{PREFIX}/login", include_in_schema=False)
async def login_form(request: Request) -> HTMLResponse:
    return _login_page(request)


@router.post(f"{PREFIX}/login", include_in_schema=False)
async def login(
    request: Request,
    now: ClockDep,
    organisation: Annotated[str, Form(max_length=FIELD_LIMIT)] = "",
    email: Annotated[str, Form(max_length=FIELD_LIMIT)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    csrf_token: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(expected, csrf_token):
        return _login_page(
            request, status=403, error="The sign-in form had expired. Please sign in again."
        )
    database = request.app.state.database
    try:
        async with database.transaction() as session:
            attempt = await OperatorService(session, now).begin_sign_in(
                organisation, email, client_address(request)
            )
    except Throttled as exc:
        log.warning(
            "console_sign_in_throttled",
            organisation=organisation,
            address=client_address(request),
        )
        response = _login_page(request, status=429, error=retry_message(exc))
        response.headers["Retry-After"] = str(
            max(1, int((exc.retry_at - now.now()).total_seconds()))
        )
        return response
    matched = await passwords.verify(attempt.password_hash, password)
    async with database.transaction() as session:
        signed = await OperatorService(session, now).finish_sign_in(attempt, matched)
    if signed is None:
        return _login_page(request, status=401, error="Invalid sign-in")
    redirect = RedirectResponse(PREFIX, status_code=303)
    redirect.set_cookie(
        SESSION_COOKIE,
        signed.token,
        httponly=True,
        samesite="lax",
        secure=cookie_is_secure(request),
        path=PREFIX,
    )
    redirect.delete_cookie(LOGIN_CSRF_COOKIE, path=f"{PREFIX}/login")
    return redirect


@router.post(f"{PREFIX}/logout", include_in_schema=False)
async def logout(
    request: Request,
    session: Session,
    now: ClockDep,
    console: SignedInActor,
) -> Response:
    await OperatorService(session, now).sign_out(console.current)
    response = RedirectResponse(f"{PREFIX}/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path=PREFIX)
    return response
