"""Drop and Cancel on a course's page (SPEC §9): each asks first, then answers with the
outcome, through the services the API's routes use.

The button fetches a confirmation into the enrollment's row (htmx), whose Confirm posts.
The answer replaces the seat counts and the enrollments, with the outcome on top; a
refusal lands in the row instead, as the error fragment the console answers every refused
htmx request with. Without script, the same buttons lead to a confirmation page and back
to the course page.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.ext.asyncio import AsyncSession

from coursegate.console.courses import (
    ENROLLMENT_PATH,
    Operating,
    Outcome,
    adapters_of,
    cancelable,
    course_context,
    course_page_response,
    is_htmx,
    load_course,
    who,
)
from coursegate.console.web import Actor, Console, Session, recorded, render
from coursegate.courses.service import CourseService, CourseView
from coursegate.enrollments.repository import EnrollmentRepository
from coursegate.enrollments.service import VISIBLE_LIVE, Dropped, EnrollmentService
from coursegate.kit.clock import Clock
from coursegate.kit.errors import NotFound
from coursegate.kit.ids import path_uuid
from coursegate.models import Enrollment
from coursegate.web import ClockDep

router = APIRouter()


@dataclass(slots=True)
class Target:
    """An enrollment acted on, with what its confirmation and its outcome say about it."""

    service: EnrollmentService
    enrollment: Enrollment
    student: str
    course: CourseView


async def _target(
    request: Request,
    session: AsyncSession,
    now: Clock,
    console: Console,
    course_id: str,
    enrollment_id: str,
) -> Target:
    """The tenant's enrollment in this course, else 404."""
    service = EnrollmentService(session, now, adapters_of(request))
    enrollment = await service.get(console.tenant_id, path_uuid(enrollment_id))
    if enrollment.course_id != course_id:
        raise NotFound()
    tenant = console.tenant_id
    learners = await EnrollmentRepository(session).learners(tenant, [enrollment.person_id])
    course = await CourseService(session, now).get(tenant, course_id)
    return Target(service, enrollment, who(learners.get(enrollment.person_id)), course)


async def _confirmation(
    request: Request,
    console: Console,
    session: AsyncSession,
    now: Clock,
    course_id: str,
    enrollment_id: str,
    action: str,
) -> HTMLResponse:
    """The question Confirm answers: a fragment for the row (htmx), else a page."""
    target = await _target(request, session, now, console, course_id, enrollment_id)
    htmx = is_htmx(request)
    context = {
        "title": f"{action.capitalize()} an enrollment",
        "active": "Courses",
        "action": action,
        "course": target.course.course,
        "enrollment": target.enrollment,
        "student": target.student,
        "htmx": htmx,
    }
    template = "enrollment_confirm.html" if htmx else "enrollment_confirm_page.html"
    return render(request, template, context)


async def _answer(
    request: Request,
    console: Console,
    session: AsyncSession,
    now: Clock,
    course_id: str,
    outcome: Outcome,
) -> HTMLResponse:
    """htmx: the course's state, in place of the one on the page; else the whole page."""
    if not is_htmx(request):
        return await course_page_response(
            request, console, session, now, course_id, outcome=outcome
        )
    page = await load_course(session, console, now, course_id, outcome=outcome)
    return render(
        request,
        "course_state.html",
        course_context(console, page, outcome=outcome, swapped=True),
        headers={"HX-Retarget": "#course-state", "HX-Reswap": "outerHTML"},
    )


@router.get(f"{ENROLLMENT_PATH}/actions", include_in_schema=False)
async def enrollment_actions(
    request: Request,
    course_id: str,
    enrollment_id: str,
    console: Operating,
    session: Session,
    now: ClockDep,
) -> HTMLResponse:
    """The row's Drop and Cancel again: what Back of a confirmation puts back."""
    target = await _target(request, session, now, console, course_id, enrollment_id)
    enrollment = target.enrollment
    context = {
        "course": target.course.course,
        "enrollment": enrollment,
        "can_drop": enrollment.status in VISIBLE_LIVE,
        "can_cancel": cancelable(enrollment, now.now()),
    }
    return render(request, "enrollment_actions.html", context)


@router.get(f"{ENROLLMENT_PATH}/drop", include_in_schema=False)
async def confirm_drop(
    request: Request,
    course_id: str,
    enrollment_id: str,
    console: Operating,
    session: Session,
    now: ClockDep,
) -> HTMLResponse:
    return await _confirmation(request, console, session, now, course_id, enrollment_id, "drop")


@router.post(f"{ENROLLMENT_PATH}/drop", include_in_schema=False)
async def drop(
    request: Request,
    course_id: str,
    enrollment_id: str,
    console: Actor,
    session: Session,
    now: ClockDep,
) -> HTMLResponse:
    """The API's drop: the seat comes back or is spent, and the answer says which and why."""
    async with recorded(request, session, console, "drop", "enrollment", enrollment_id) as act:
        target = await _target(request, session, now, console, course_id, enrollment_id)
        dropped = await target.service.drop(console.tenant_id, target.enrollment.id)
        act.detail = {
            "course": course_id,
            "seat_recovered": dropped.seat_recovered,
            "reason": dropped.reason,
        }
    message = _dropped(dropped, target)
    outcome = Outcome(target.enrollment.id, message, dropped.seat_recovered)
    return await _answer(request, console, session, now, course_id, outcome)


@router.get(f"{ENROLLMENT_PATH}/cancel", include_in_schema=False)
async def confirm_cancel(
    request: Request,
    course_id: str,
    enrollment_id: str,
    console: Operating,
    session: Session,
    now: ClockDep,
) -> HTMLResponse:
    return await _confirmation(request, console, session, now, course_id, enrollment_id, "cancel")


@router.post(f"{ENROLLMENT_PATH}/cancel", include_in_schema=False)
async def cancel(
    request: Request,
    course_id: str,
    enrollment_id: str,
    console: Actor,
    session: Session,
    now: ClockDep,
) -> HTMLResponse:
    """The API's cancel, with the operator's email as its author."""
    async with recorded(request, session, console, "cancel", "enrollment", enrollment_id) as act:
        target = await _target(request, session, now, console, course_id, enrollment_id)
        await target.service.cancel(console.tenant_id, target.enrollment.id, console.current.email)
        act.detail = {"course": course_id}
    message = (
        f"Canceled the enrollment of {target.student}: its seat was rolled back and a new"
        " seat is available."
    )
    outcome = Outcome(target.enrollment.id, message, True)
    return await _answer(request, console, session, now, course_id, outcome)


def _dropped(dropped: Dropped, target: Target) -> str:
    last_drop = target.course.course.last_drop_date.isoformat()
    why = {
        "before_last_drop_date": "the seat is available again (dropped before the last drop"
        f" date, {last_drop})",
        "after_last_drop_date": "the seat is spent: it was dropped on or after the last drop"
        f" date ({last_drop})",
        "seat_previously_dropped": "the seat is spent: it had been dropped once before",
        "no_seat": "it held no seat (a roster enrollment)",
    }.get(dropped.reason, dropped.reason)
    return f"Dropped {target.student}: {why}."
