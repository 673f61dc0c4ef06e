"""Fake rostering partners served over real HTTP on loopback, for the connectors' tests.

`DataPassFake` is the DataPass API (a token endpoint and one paged list); `OneRosterFake` is a
OneRoster 1.2 rostering service (users, classes and enrollments, paged by limit/offset with
`X-Total-Count` and `Link`, filtered on `dateLastModified`). Each runs uvicorn in a background
thread with its own event loop, so sync tests, async tests and a `coursegate` subprocess all
reach it the same way: through a socket, with the real OAuth2 client and HTTP stack. Scripted
faults (status, Retry-After, delay) and a partner that breaks mid-pagination let tests drive
the connectors' error handling without mocks.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import operator
import re
import secrets
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from functools import cache, partial
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Final, Literal, Self
from urllib.parse import parse_qsl, quote, unquote_plus, urlencode

import httpx
import jsonschema
import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

Route = Literal["token", "list", "users", "classes", "enrollments"]
"""DataPass answers on "token" and "list"; OneRoster on "token" and its three collections."""
ENTRY_BASE: Final = datetime(2026, 6, 1, 9, 0, 0, tzinfo=UTC)
"""`datapass_entry(n)` is validated at this instant plus n minutes."""
ROSTER_BASE: Final = datetime(2026, 8, 1, 7, 0, tzinfo=UTC)
"""OneRoster records numbered n were last modified at this instant plus n minutes."""
_FORM: Final = "application/x-www-form-urlencoded"
_TOKEN_PATH: Final = "/oauth/token"
_BEARER_CHALLENGE: Final = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
_INTEGER: Final = re.compile(r"[0-9]{1,9}")
_ENTRY_NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_URL, "https://datapass.example/fake")

_Answer = Callable[[Request], Awaitable[Response]]


@dataclass
class Fault:
    """One scripted misbehaviour: the next request to a route gets this instead of its reply."""

    status: int = 500
    retry_after: str | None = None
    delay: float = 0.0
    """Seconds to wait before answering, to provoke client timeouts."""
    body: str = '{"error": "fault"}'


@dataclass
class Recorded:
    """A request as the fake saw it; `status` is 0 until it is answered."""

    route: Route
    query: dict[str, str]
    headers: dict[str, str]
    status: int = 0


class _PartnerFake:
    """What every fake partner shares: the server thread, OAuth2 client credentials, faults.

    Tests change `faults` or revoke tokens at any time; the server thread reads them on every
    request.
    """

    _realm: ClassVar[str]
    """Names the server thread and the Basic challenge, so a failing test says which fake."""

    def __init__(self, routes: tuple[Route, ...]) -> None:
        self.client_id = "coursegate"
        self.client_secret = secrets.token_urlsafe(32)
        self.token_lifetime = 3600
        self.faults: dict[str, deque[Fault]] = {route: deque() for route in ("token", *routes)}
        self.requests: list[Recorded] = []
        self.tokens_issued: list[str] = []
        self.scopes_asked: list[str | None] = []
        """The `scope` of each token request (None when none was asked)."""
        self.port = 0
        self._valid_tokens: set[str] = set()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._crash: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self.app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
        self.app.add_api_route(_TOKEN_PATH, self._token, methods=["POST"])

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 10.0) -> None:
        """Serves in a daemon thread; returns once the port answers HTTP."""
        if self._thread is not None:
            raise RuntimeError("the fake is already running")
        # Bound here and handed to uvicorn: the port is known at once and cannot be taken
        # by someone else between choosing it and listening on it.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._socket = sock
        self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            ws="none",
            loop="asyncio",
            http="h11",
            timeout_graceful_shutdown=1,
        )
        server = uvicorn.Server(config)
        self._server = server
        self._loop = self._wake = None
        self._crash = None
        self._thread = threading.Thread(
            target=self._serve,
            args=(server, sock),
            name=f"{self._realm}-fake-{self.port}",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._crash is not None or not self._thread.is_alive():
                self.stop()
                raise RuntimeError(f"the fake partner did not start: {self._crash!r}")
            if server.started:
                try:
                    httpx.get(f"{self.base_url}/", timeout=1.0)
                except httpx.HTTPError:
                    pass
                else:
                    return
            time.sleep(0.01)
        self.stop()
        raise RuntimeError(f"the fake partner did not answer within {timeout_s} s")

    def stop(self) -> None:
        """Stops serving; requests still delayed by a fault are cut short."""
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(wake.set)
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            if self._thread.is_alive() and self._server is not None:
                self._server.force_exit = True
                self._thread.join(timeout=5.0)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _serve(self, server: uvicorn.Server, sock: socket.socket) -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # reported by start()
            self._crash = exc

    # -- behaviour -------------------------------------------------------------------------

    def revoke_tokens(self) -> None:
        """Every token issued so far stops working: the next API call answers 401."""
        self._valid_tokens.clear()

    def at(self, route: Route) -> list[Recorded]:
        return [r for r in self.requests if r.route == route]

    async def _respond(self, route: Route, request: Request, answer: _Answer) -> Response:
        """Every route passes here, so recording and scripted faults work alike on all of them."""
        recorded = Recorded(
            route=route,
            query=dict(request.query_params),
            headers={k.lower(): v for k, v in request.headers.items()},
        )
        self.requests.append(recorded)
        queue = self.faults.get(route)
        if queue:
            fault = queue.popleft()
            await self._sleep(fault.delay)
            headers = {} if fault.retry_after is None else {"Retry-After": fault.retry_after}
            reply = Response(
                content=fault.body,
                status_code=fault.status,
                headers=headers,
                media_type="application/json",
            )
        else:
            reply = await answer(request)
        recorded.status = reply.status_code
        return reply

    async def _sleep(self, seconds: float) -> None:
        # Cut short by stop(), which need not wait for a long scripted delay.
        if self._wake is None:
            self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()

    def _bearer_is_live(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and token.strip() in self._valid_tokens

    async def _token(self, request: Request) -> Response:
        return await self._respond("token", request, self._issue)

    async def _issue(self, request: Request) -> Response:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != _FORM:
            return _error(400, "invalid_request")
        try:
            form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        except UnicodeDecodeError:
            return _error(400, "invalid_request")
        if form.get("grant_type") != "client_credentials":
            return _error(400, "unsupported_grant_type")
        basic = _basic_credentials(request.headers.get("authorization"))
        client_id, client_secret = basic or (form.get("client_id"), form.get("client_secret"))
        if not (
            client_id is not None
            and client_secret is not None
            and secrets.compare_digest(client_id.encode(), self.client_id.encode())
            and secrets.compare_digest(client_secret.encode(), self.client_secret.encode())
        ):
            challenge = {"WWW-Authenticate": f'Basic realm="{self._realm}"'}
            return _error(401, "invalid_client", challenge)
        self.scopes_asked.append(form.get("scope"))
        token = secrets.token_urlsafe(32)
        self.tokens_issued.append(token)
        self._valid_tokens.add(token)
        return JSONResponse(
            {"access_token": token, "token_type": "Bearer", "expires_in": self.token_lifetime},
            headers={"Cache-Control": "no-store"},
        )


class DataPassFake(_PartnerFake):
    """The DataPass API as the connector sees it: a token endpoint and a paged list.

    Tests change `entries`, `faults`, `fail_from_offset` or revoke tokens at any time; the
    server thread reads them on every request.
    """

    _realm = "datapass"

    def __init__(self) -> None:
        super().__init__(("list",))
        self.entries: list[dict[str, Any]] = []
        self.fail_from_offset: int | None = None
        self.app.add_api_route("/api/authorization_requests", self._list, methods=["GET"])

    @property
    def auth_url(self) -> str:
        return f"{self.base_url}{_TOKEN_PATH}"

    @property
    def api_base_url(self) -> str:
        return f"{self.base_url}/api"

    async def _list(self, request: Request) -> Response:
        return await self._respond("list", request, self._page)

    async def _page(self, request: Request) -> Response:
        if not self._bearer_is_live(request):
            return _error(401, "invalid_token", _BEARER_CHALLENGE)
        query = request.query_params
        if query.get("state") != "validated":
            return _error(400, "invalid_state")
        limit = _integer(query.get("limit"), default=100)
        offset = _integer(query.get("offset"), default=0)
        if limit is None or not 1 <= limit <= 1000:
            return _error(400, "invalid_limit")
        if offset is None:
            return _error(400, "invalid_offset")
        if self.fail_from_offset is not None and offset >= self.fail_from_offset:
            return _error(500, "internal_server_error")
        validated = [e for e in self.entries if e.get("state") == "validated"]
        return JSONResponse(validated[offset : offset + limit])


_Collection = Literal["users", "classes", "enrollments"]
_COLLECTIONS: Final[tuple[_Collection, ...]] = ("users", "classes", "enrollments")
_ONEROSTER_PATH: Final = "/ims/oneroster/rostering/v1p2"
_FILTER: Final = re.compile(r"dateLastModified(>=|<=|>|<|=)'([^']*)'")
_RFC3339: Final = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})"
)
_COMPARISONS: Final[dict[str, Callable[[datetime, datetime], bool]]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "=": operator.eq,
}


class OneRosterFake(_PartnerFake):
    """OneRoster 1.2 rostering as a connector sees it: a token endpoint and three collections.

    Paths, paging headers, filter syntax and error bodies follow 1EdTech's OpenAPI binding,
    so a connector written against the spec needs nothing special here. Tests change the
    collections, `faults` and `fail_from_offset` or revoke tokens at any time; the server
    thread reads them on every request.
    """

    _realm = "oneroster"

    def __init__(self, path: str = _ONEROSTER_PATH) -> None:
        super().__init__(_COLLECTIONS)
        self.path = path
        """Where the collections are: 1.2's path, or 1.1's for providers that serve the 1.2
        model there."""
        self.users: list[dict[str, Any]] = []
        self.classes: list[dict[str, Any]] = []
        self.enrollments: list[dict[str, Any]] = []
        self.fail_from_offset: dict[str, int] = {}
        """Collection -> the offset from which that collection answers 500."""
        self.page_cap: int | None = None
        """At most this many records a page, whatever `limit` asks (the description makes
        `limit` a maximum, and large providers cap it)."""
        self.total_count = True
        """Whether answers carry `X-Total-Count` (some providers leave it out)."""
        self.ignores_offset = False
        """Answer every page as if offset were 0 (what a mock that invents data does)."""
        self.conformant = True
        """Whether every page must be valid by 1EdTech's description; a test that serves
        broken or pre-1.2 records on purpose says so by setting it False."""
        self.schema_violations: list[str] = []
        """What the pages served broke of the description (checked on every page)."""
        for collection in _COLLECTIONS:
            self.app.add_api_route(
                f"{path}/{collection}", self._collection(collection), methods=["GET"]
            )

    @property
    def token_url(self) -> str:
        return f"{self.base_url}{_TOKEN_PATH}"

    @property
    def api_base_url(self) -> str:
        return f"{self.base_url}{self.path}"

    def _records(self, collection: _Collection) -> list[dict[str, Any]]:
        # Looked up per request: tests may rebind the lists, not only mutate them.
        match collection:
            case "users":
                return self.users
            case "classes":
                return self.classes
            case "enrollments":
                return self.enrollments

    def _collection(self, collection: _Collection) -> _Answer:
        async def endpoint(request: Request) -> Response:
            return await self._respond(collection, request, partial(self._page, collection))

        return endpoint

    async def _page(self, collection: _Collection, request: Request) -> Response:
        if not self._bearer_is_live(request):
            return _imsx_error(401, "unauthorisedrequest", "unknown or revoked bearer token")
        query = request.query_params
        limit = _integer(query.get("limit"), default=100)
        offset = _integer(query.get("offset"), default=0)
        if limit is None or not 1 <= limit <= 1000:
            return _imsx_error(400, "invaliddata", "limit must be an integer from 1 to 1000")
        if offset is None:
            return _imsx_error(400, "invaliddata", "offset must be a non-negative integer")
        if self.page_cap is not None:
            limit = min(limit, self.page_cap)
        if self.ignores_offset:
            offset = 0
        records = self._records(collection)
        filter_ = query.get("filter")
        if filter_ is not None:
            keep = _modified_filter(filter_)
            if keep is None:
                return _imsx_error(
                    400,
                    "invalid_filter_field",
                    "only dateLastModified compared (>, >=, <, <=, =) to an RFC 3339 instant",
                )
            records = [r for r in records if keep(r)]
        failing_from = self.fail_from_offset.get(collection)
        if failing_from is not None and offset >= failing_from:
            return _imsx_error(500, "internal_server_error", "the partner failed")
        total = len(records)
        links = []
        if offset + limit < total:
            links.append(
                f'<{self._page_url(collection, limit, offset + limit, filter_)}>; rel="next"'
            )
        last = (total - 1) // limit * limit if total else 0
        links.append(f'<{self._page_url(collection, limit, last, filter_)}>; rel="last"')
        headers = {"Link": ", ".join(links)}
        if self.total_count:
            headers["X-Total-Count"] = str(total)
        body = {collection: records[offset : offset + limit]}
        self.schema_violations += oneroster_violations(collection, body)
        return JSONResponse(body, headers=headers)

    def _page_url(
        self, collection: _Collection, limit: int, offset: int, filter_: str | None
    ) -> str:
        params: dict[str, str | int] = {"limit": limit, "offset": offset}
        if filter_ is not None:
            params["filter"] = filter_
        return f"{self.api_base_url}/{collection}?{urlencode(params, quote_via=quote)}"


def _error(status: int, error: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"error": error}, status_code=status, headers=headers)


def _imsx_error(status: int, code_minor: str, description: str) -> Response:
    """The imsx_StatusInfo body every OneRoster failure carries, which clients branch on."""
    body = {
        "imsx_codeMajor": "failure",
        "imsx_severity": "error",
        "imsx_description": description,
        "imsx_CodeMinor": {
            "imsx_codeMinorField": [
                {
                    "imsx_codeMinorFieldName": "TargetEndSystem",
                    "imsx_codeMinorFieldValue": code_minor,
                }
            ]
        },
    }
    headers = _BEARER_CHALLENGE if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


def _instant(text: object) -> datetime | None:
    """An aware datetime, or None: a naive one cannot be ordered against the filter's."""
    if not isinstance(text, str):
        return None
    try:
        parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _modified_filter(filter_: str) -> Callable[[dict[str, Any]], bool] | None:
    """The record predicate of a `dateLastModified` filter, None for any other filter.

    Instants are compared, not strings, so a client may send any offset or precision.
    """
    match = _FILTER.fullmatch(filter_)
    if match is None or _RFC3339.fullmatch(match[2]) is None:
        return None
    bound = _instant(match[2])
    if bound is None:
        return None
    compare = _COMPARISONS[match[1]]

    def keep(record: dict[str, Any]) -> bool:
        modified = _instant(record.get("dateLastModified"))
        return modified is not None and compare(modified, bound)

    return keep


def _integer(value: str | None, *, default: int) -> int | None:
    """A non-negative decimal integer, `default` when absent, None when malformed."""
    if value is None:
        return default
    return int(value) if _INTEGER.fullmatch(value) else None


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    """(client_id, client_secret) from `Basic` auth, form-decoded as RFC 6749 §2.3.1 says."""
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return ("", "")
    client_id, _, client_secret = decoded.partition(":")
    return unquote_plus(client_id), unquote_plus(client_secret)


# -- records ---------------------------------------------------------------------------------


class _Default(Enum):
    VALUE = "default"


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def datapass_entry(
    n: int,
    *,
    type_: str = "api_particulier_cnous",
    validated_at: datetime | Literal[_Default.VALUE] | None = _Default.VALUE,
    public_id: str | None = None,
    state: str = "validated",
) -> dict[str, Any]:
    """An authorization request shaped as DataPass serves it.

    `validated_at` defaults to `ENTRY_BASE` plus n minutes; None gives an entry whose
    `last_validated_at` is present but null.
    """
    if validated_at is _Default.VALUE:
        validated_at = ENTRY_BASE + timedelta(minutes=n)
    if validated_at is not None and validated_at.tzinfo is None:
        raise ValueError("validated_at must be timezone-aware")
    anchor = validated_at or ENTRY_BASE + timedelta(minutes=n)
    created_at = anchor - timedelta(days=3)
    submitted_at = anchor - timedelta(days=1)
    return {
        "id": n,
        "public_id": public_id or str(uuid.uuid5(_ENTRY_NAMESPACE, f"authorization-request-{n}")),
        "type": type_,
        "state": state,
        "form_uid": f"{type_.replace('_', '-')}-etudiant-boursier",
        "data": {
            "intitule": f"Tarif social de la formation {n}",
            "scopes": ["cnous_statut_boursier", "cnous_echelon_bourse"],
            "niveau_bourse_min": n % 8,
        },
        "created_at": _iso(created_at),
        "last_submitted_at": _iso(submitted_at),
        "last_validated_at": None if validated_at is None else _iso(validated_at),
        "habilitations": [
            {
                "id": 10_000 + n,
                "slug": f"{n}-habilitation",
                "state": "active" if state == "validated" else "inactive",
                "created_at": _iso(anchor),
            }
        ],
        "organisation": {
            "id": 500 + n,
            "siret": f"{13002526500000 + n:014d}",
            "name": f"Université de test n°{n}",
        },
    }


_ROSTER_HREF: Final = f"https://sis.school.example{_ONEROSTER_PATH}"
"""Records are built without a running fake, so their hrefs point at a fixed partner host."""
_GIVEN_NAMES: Final = ("Ada", "Bastien", "Chloé", "Dmitri", "Emeka", "Fatou", "Grace")
_FAMILY_NAMES: Final = ("Okafor", "Lindqvist", "Moreau", "Tanaka", "Haddad", "Novak")


def _modified(modified: datetime | None, default: datetime) -> str:
    if modified is None:
        return _iso(default)
    if modified.tzinfo is None:
        raise ValueError("modified must be timezone-aware")
    return _iso(modified)


def _ref(kind: str, collection: str, sourced_id: str) -> dict[str, str]:
    return {
        "href": f"{_ROSTER_HREF}/{collection}/{sourced_id}",
        "sourcedId": sourced_id,
        "type": kind,
    }


def oneroster_user(
    n: int,
    *,
    role: str = "student",
    status: str = "active",
    modified: datetime | None = None,
    email: str | Literal[_Default.VALUE] | None = _Default.VALUE,
) -> dict[str, Any]:
    """A OneRoster 1.2 User as a rostering service lists it.

    `modified` defaults to `ROSTER_BASE` plus n minutes, so records order by number; `email`
    None leaves the optional key out, as partners do for learners without an address.
    """
    username = f"learner{n}"
    user: dict[str, Any] = {
        "sourcedId": f"user-{n}",
        "status": status,
        "dateLastModified": _modified(modified, ROSTER_BASE + timedelta(minutes=n)),
        "userMasterIdentifier": f"UMI-{n:06d}",
        "username": username,
        "userIds": [
            {"type": "LDAP", "identifier": f"uid={username},ou=people,dc=school,dc=example"}
        ],
        "enabledUser": "true",
        "givenName": _GIVEN_NAMES[n % len(_GIVEN_NAMES)],
        "familyName": _FAMILY_NAMES[n % len(_FAMILY_NAMES)],
        "middleName": _GIVEN_NAMES[(n + 3) % len(_GIVEN_NAMES)],
        "roles": [{"roleType": "primary", "role": role, "org": _ref("org", "orgs", "school-1")}],
        "agents": [],
        "grades": ["09"],
    }
    if email is _Default.VALUE:
        email = f"{username}@school.example"
    if email is not None:
        user["email"] = email
    return user


def oneroster_class(
    class_id: str,
    *,
    status: str = "active",
    modified: datetime | None = None,
    title: str | None = None,
) -> dict[str, Any]:
    """A OneRoster 1.2 Class; `modified` defaults to `ROSTER_BASE`, as classes carry no number."""
    return {
        "sourcedId": class_id,
        "status": status,
        "dateLastModified": _modified(modified, ROSTER_BASE),
        "title": title or f"Algebra I ({class_id})",
        "classCode": class_id.upper(),
        "classType": "scheduled",
        "location": f"Room {class_id}",
        "grades": ["09"],
        "subjects": ["Mathematics"],
        "course": _ref("course", "courses", f"course-{class_id}"),
        "school": _ref("org", "orgs", "school-1"),
        "terms": [_ref("academicSession", "terms", "term-2026-fall")],
        "periods": ["1"],
    }


def oneroster_enrollment(
    n: int,
    *,
    user: str,
    class_id: str,
    role: str = "student",
    status: str = "active",
    modified: datetime | None = None,
) -> dict[str, Any]:
    """A OneRoster 1.2 Enrollment; `modified` defaults to `ROSTER_BASE` plus n minutes."""
    return {
        "sourcedId": f"enr-{n}",
        "status": status,
        "dateLastModified": _modified(modified, ROSTER_BASE + timedelta(minutes=n)),
        "user": _ref("user", "users", user),
        "class": _ref("class", "classes", class_id),
        "school": _ref("org", "orgs", "school-1"),
        "role": role,
        "primary": "false",
        "beginDate": "2026-09-01",
        "endDate": "2027-06-30",
    }


ONEROSTER_DESCRIPTION: Final = (
    Path(__file__).parent / "standards" / ("onerosterv1p2rostersservice_openapi3_v1p0.json")
)
_SET_TYPES: Final = {
    "users": "UserSetDType",
    "classes": "ClassSetDType",
    "enrollments": "EnrollmentSetDType",
}


@cache
def _oneroster_validator(collection: str) -> jsonschema.Draft4Validator:
    """1EdTech's schema of a collection's 200 answer; the whole description is the root
    document, so its `#/components/schemas/…` references resolve."""
    description = json.loads(ONEROSTER_DESCRIPTION.read_text())
    return jsonschema.Draft4Validator(
        {**description, "$ref": f"#/components/schemas/{_SET_TYPES[collection]}"}
    )


def oneroster_violations(collection: str, body: Any) -> list[str]:
    """How a page breaks 1EdTech's OneRoster 1.2 description (empty: it does not)."""
    return [
        f"{collection}: {'/'.join(str(p) for p in e.absolute_path)}: {e.message}"
        for e in _oneroster_validator(collection).iter_errors(body)
    ]
