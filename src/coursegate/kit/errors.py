"""Typed errors and the one place that turns any failure into the public JSON body.

A domain error carries its public code and HTTP status, so services raise
meaning and never think about responses.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any, ClassVar

import asyncpg
import psycopg
import structlog
from fastapi import FastAPI, Request, routing
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from coursegate.kit.outage import is_database_unreachable, warn_unreachable

log = structlog.get_logger(__name__)

# The public constraint codes; a custom pydantic error whose type is one of
# these passes through unchanged.
CONSTRAINTS = frozenset(
    {
        "required",
        "invalid_type",
        "must_be_positive",
        "too_many_decimal_places",
        "out_of_range",
        "timezone_required",
        "invalid_state_code",
        "too_long",
        "invalid",
        "forbidden_target",
        "unknown_field",
    }
)

_TYPE_TO_CONSTRAINT = {
    "missing": "required",
    "string_too_long": "too_long",
    "too_long": "too_long",
    "greater_than": "out_of_range",
    "greater_than_equal": "out_of_range",
    "less_than": "out_of_range",
    "less_than_equal": "out_of_range",
    "decimal_max_places": "too_many_decimal_places",
    "extra_forbidden": "unknown_field",
    "timezone_aware": "timezone_required",
}


class DomainError(Exception):
    code: ClassVar[str] = "INTERNAL_ERROR"
    status: ClassVar[int] = 500

    def __init__(self, message: str | None = None, *, details: Sequence[Any] | None = None):
        super().__init__(message or self.code)
        self.message = message
        self.details = list(details) if details is not None else None

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code}
        if self.message:
            body["message"] = self.message
        if self.details is not None:
            body["details"] = self.details
        return body

    def headers(self) -> dict[str, str] | None:
        """Response headers the code calls for (none, for most)."""
        return None


class ValidationFailed(DomainError):
    code = "VALIDATION_ERROR"
    status = 400

    @classmethod
    def field(cls, field: str, constraint: str, message: str | None = None) -> ValidationFailed:
        detail = {"field": field, "constraint": constraint}
        if message:
            detail["message"] = message
        return cls(message, details=[detail])


class InvalidJson(DomainError):
    code = "INVALID_JSON"
    status = 400


class Unauthorized(DomainError):
    code = "UNAUTHORIZED"
    status = 401


class Forbidden(DomainError):
    code = "FORBIDDEN"
    status = 403


class NotFound(DomainError):
    code = "NOT_FOUND"
    status = 404


class MethodNotAllowed(DomainError):
    code = "METHOD_NOT_ALLOWED"
    status = 405


class AlreadyExists(DomainError):
    code = "ALREADY_EXISTS"
    status = 409


class PayloadTooLarge(DomainError):
    code = "PAYLOAD_TOO_LARGE"
    status = 413


class DatabaseUnavailable(DomainError):
    """The database cannot be reached: a 503 the caller retries after `RETRY_AFTER_SECONDS`,
    never a 500, which would read as our bug (SPEC §0)."""

    code = "DATABASE_UNAVAILABLE"
    status = 503
    RETRY_AFTER_SECONDS: ClassVar[int] = 5

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.RETRY_AFTER_SECONDS)}


class InternalError(DomainError):
    """Our bug: logged with its traceback, answered without detail."""


DATABASE_ERRORS: tuple[type[Exception], ...] = (
    DBAPIError,
    OSError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    psycopg.Error,
    sqlite3.Error,
)
"""The classes a failure to reach the database is raised as. Each gets a handler of its
own: one for `Exception` answers too, but Starlette then raises the error again to the
server, which logs its traceback — once per request while the database is down."""


def constraint_for(error_type: str) -> str:
    if error_type in CONSTRAINTS:
        return error_type
    if error_type in _TYPE_TO_CONSTRAINT:
        return _TYPE_TO_CONSTRAINT[error_type]
    if error_type.endswith(("_type", "_parsing")):
        return "invalid_type"
    return "invalid"


def field_name(loc: Sequence[str | int]) -> str:
    """`("body", "students", 3, "email")` → `students.3.email`; the source prefix goes."""
    parts = list(loc)
    if parts and parts[0] in {"body", "query", "path", "header", "cookie"}:
        source = parts.pop(0)
        if not parts:
            return str(source)
    return ".".join(str(p) for p in parts)


def validation_details(errors: Sequence[Any]) -> list[dict[str, str]]:
    details: list[dict[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for err in errors:
        field = field_name(err.get("loc", ()))
        constraint = constraint_for(str(err.get("type", "")))
        if (field, constraint) in seen:
            continue
        seen.add((field, constraint))
        details.append({"field": field, "constraint": constraint, "message": str(err.get("msg"))})
    return details


def _is_undecoded_body(error: Any) -> bool:
    """Invalid JSON, or a body FastAPI did not decode because its content type was not JSON."""
    if error.get("type") == "json_invalid":
        return True
    return tuple(error.get("loc", ())) == ("body",) and isinstance(error.get("input"), bytes | str)


def error_response(error: DomainError, headers: dict[str, str] | None = None) -> JSONResponse:
    own = error.headers()
    if own:
        headers = {**own, **(headers or {})}
    return JSONResponse(error.body(), status_code=error.status, headers=headers)


_HTTP_STATUS_ERRORS: dict[int, type[DomainError]] = {
    # The one 400 the framework raises itself: a body it could not parse (a JSON parser
    # that gave up on recursion, say); every body of this API is JSON.
    400: InvalidJson,
    401: Unauthorized,
    404: NotFound,
    405: MethodNotAllowed,
    413: PayloadTooLarge,
}


def http_error_body(status: int, message: str) -> dict[str, Any]:
    """The body of a framework refusal with no code of its own (a 416 from a static file,
    say): SPEC §0 names no other code, so a client's fault is the request being invalid and
    the rest is ours. The status stays what it was."""
    if status >= 500:
        return {"error": "INTERNAL_ERROR", "message": message}
    return {
        "error": "VALIDATION_ERROR",
        "message": message,
        "details": [{"field": "request", "constraint": "invalid"}],
    }


def failure_of(exc: Exception, where: str) -> DomainError:
    """The answer to a failure that is not a refusal: 503 when the database cannot be
    reached (a warning line, no traceback: the caller retries), else a 500 for our bug,
    logged with its traceback."""
    if is_database_unreachable(exc):
        warn_unreachable(where, exc)
        return DatabaseUnavailable("the database cannot be reached just now; retry later")
    log.exception("unhandled_error", error_class=type(exc).__name__)
    return InternalError()


def allowed_methods(request: Request) -> str:
    """Every method some route serves at this path.

    The router answers 405 from the first route whose path matched, so its `Allow` names only
    that route's methods, when `GET /x` and `POST /x` are two routes (RFC 9110 §10.2.1 wants
    them all).
    """
    path = request.scope.get("path", "")
    methods: set[str] = set()
    for route in routing.iter_route_contexts(request.app.routes):
        regex = getattr(route, "path_regex", None)
        route_methods = getattr(route, "methods", None)
        if regex is not None and route_methods and regex.match(path):
            methods.update(route_methods)
    return ", ".join(sorted(methods))


def install_error_handlers(app: FastAPI) -> None:
    async def on_domain_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DomainError)
        return error_response(exc)

    async def on_validation_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = exc.errors()
        if any(_is_undecoded_body(e) for e in errors):
            return error_response(InvalidJson("the body is not valid JSON"))
        return error_response(ValidationFailed(details=validation_details(errors)))

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        headers = dict(exc.headers) if exc.headers else None
        if exc.status_code == MethodNotAllowed.status:
            headers = {**(headers or {}), "Allow": allowed_methods(request)}
        cls = _HTTP_STATUS_ERRORS.get(exc.status_code)
        if cls is not None:
            return error_response(cls(), headers=headers)
        return JSONResponse(
            http_error_body(exc.status_code, str(exc.detail)),
            status_code=exc.status_code,
            headers=headers,
        )

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        return error_response(failure_of(exc, request.url.path))

    app.add_exception_handler(DomainError, on_domain_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    for exc_class in (*DATABASE_ERRORS, Exception):
        app.add_exception_handler(exc_class, on_unexpected)
