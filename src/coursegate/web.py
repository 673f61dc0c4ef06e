"""Request-scoped dependencies: the unit of work, the clock, the calling tenant."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from coursegate.db import Database
from coursegate.kit.clock import Clock
from coursegate.kit.contract import Dependencies
from coursegate.kit.errors import Unauthorized
from coursegate.tenancy.service import Principal, TenancyService


def database(request: Request) -> Database:
    db: Database = request.app.state.database
    return db


def clock(request: Request) -> Clock:
    value: Clock = request.app.state.clock
    return value


async def unit_of_work(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per request, committed before the response is sent.

    `scope="function"` below makes FastAPI finish this dependency before it
    answers, so a failed commit becomes an error response instead of a 201
    for data that was never stored.
    """
    async with database(request).transaction() as session:
        yield session


Session = Annotated[AsyncSession, Depends(unit_of_work, scope="function")]
ClockDep = Annotated[Clock, Depends(clock)]


async def principal(request: Request, session: Session, now: ClockDep) -> Principal:
    """The tenant behind `Authorization: Bearer <api key>`; anything else is 401."""
    return await _authenticate(request, session, now)


async def principal_briefly(request: Request, now: ClockDep) -> Principal:
    """The same, in a transaction of its own that ends at once: for routes that must not
    hold a connection while they wait (SQLite has one, and a saga needs it)."""
    async with database(request).transaction() as session:
        return await _authenticate(request, session, now)


async def _authenticate(request: Request, session: AsyncSession, now: Clock) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized()
    found = await TenancyService(session, now).authenticate(token.strip())
    if found is None:
        raise Unauthorized()
    return found[0]


class Location:
    """Sets `Location` on a create's answer: the object's URL under the collection posted to."""

    def __init__(self, request: Request, response: Response) -> None:
        self.collection = request.url.path.rstrip("/")
        self.response = response

    def __call__(self, object_id: object) -> None:
        self.response.headers["Location"] = f"{self.collection}/{object_id}"


Locate = Annotated[Location, Depends(Location)]
CurrentPrincipal = Annotated[Principal, Depends(principal)]
BriefPrincipal = Annotated[Principal, Depends(principal_briefly)]


KNOWN_DEPENDENCIES = Dependencies(
    authenticated=frozenset({principal, principal_briefly}),
    transactional=frozenset({unit_of_work, principal_briefly}),
)
"""What the OpenAPI description reads off a route's dependencies (`kit/contract.py`)."""
