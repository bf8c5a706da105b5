"""Crew page routes (HTML, not part of the OpenAPI schema): sign in, the route, moves.

``GET /crew`` shows the signed-in crew member's route; each job's form posts to
``/crew/tickets/{id}`` and the page comes back (post/redirect/get). Moves go through the
ticket service, so the lifecycle rules, crew scoping and the audit trail are the API's own.
Starting work or resolving a job also reports the crew's position (the job's village).
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request, status
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from api.auth import service as auth_service
from api.auth.models import Role
from api.auth.security import Principal, issue_access_token
from api.crewpage.session import (
    COOKIE,
    COOKIE_PATH,
    crew_member,
    form_token,
    form_token_valid,
)
from api.deps import MAX_ROW_ID, ApiSettingsDep, RowId, SessionDep
from api.errors import DomainError, Unauthorized
from api.scheduling import service as scheduling
from api.scheduling.problem import local_zone, ticket_village
from api.scheduling.views import config_of
from api.tickets import service as tickets
from api.tickets.lifecycle import MOVES
from api.tickets.models import Ticket, TicketStatus
from api.tickets.schemas import TicketTransition

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
#: the moves a crew member may make, as the page labels them
CREW_MOVES = {target: label for target, label in (
    (TicketStatus.EN_ROUTE, "On my way"), (TicketStatus.IN_PROGRESS, "Start work"),
    (TicketStatus.RESOLVED, "Resolved")) if Role.CREW_MEMBER in MOVES[target].roles}
#: arriving on site: the crew is at the job's village
_ON_SITE = frozenset({TicketStatus.IN_PROGRESS, TicketStatus.RESOLVED})

router = APIRouter(prefix="/crew", include_in_schema=False)


def _secret(request: Request) -> str:
    secret: str = request.app.state.jwt_secret
    return secret


def _login_page(request: Request, error: str = "", code: int = 200) -> HTMLResponse:
    return templates.TemplateResponse(request, "login.html", {"error": error},
                                      status_code=code)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    return _login_page(request)


@router.post("/login")
def login(request: Request, db_session: SessionDep, settings: ApiSettingsDep,
          username: Annotated[str, Form(max_length=64)],
          password: Annotated[str, Form(max_length=256)]) -> Response:
    """The password flow of the API; the JWT goes into the page's cookie."""
    try:
        user = auth_service.authenticate(db_session=db_session, username=username,
                                         password=password)
    except Unauthorized:
        return _login_page(request, "Wrong username or password.", 401)
    if user.role is not Role.CREW_MEMBER or user.crew_id is None:
        return _login_page(request, "This page is for crew members linked to a crew.", 403)
    token = issue_access_token(username=user.username, secret=_secret(request),
                               minutes=settings.access_token_minutes)
    response = RedirectResponse("/crew", status_code=status.HTTP_303_SEE_OTHER)
    response.set_cookie(COOKIE, token, max_age=settings.access_token_minutes * 60,
                        path=COOKIE_PATH, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")
    return response


@router.post("/logout")
def logout() -> Response:
    response = RedirectResponse("/crew/login", status_code=status.HTTP_303_SEE_OTHER)
    response.delete_cookie(COOKIE, path=COOKIE_PATH)
    return response


def _to_login() -> Response:
    return RedirectResponse("/crew/login", status_code=status.HTTP_303_SEE_OTHER)


def _route_page(request: Request, db_session: SessionDep, member: Principal, token: str,
                message: str = "", error: str = "", code: int = 200) -> HTMLResponse:
    config = config_of(request.app)
    route = scheduling.crew_route(db_session=db_session, crew_id=member.crew_id or 0,
                                  viewer=member, config=config)
    zone = local_zone(config.utc_offset_hours)

    def local(moment: datetime | None, pattern: str = "%d %b %H:%M") -> str:
        return moment.astimezone(zone).strftime(pattern) if moment else ""

    return templates.TemplateResponse(request, "route.html", {
        "route": route, "member": member, "moves": CREW_MOVES, "local": local,
        "csrf": form_token(token, _secret(request)), "message": message, "error": error,
    }, status_code=code)


@router.get("", response_class=HTMLResponse)
def route_page(request: Request, db_session: SessionDep,
               moved: Annotated[int | None, Query(ge=1, le=MAX_ROW_ID)] = None,
               to: TicketStatus | None = None) -> Response:
    """Today's route of the signed-in crew member's crew (sign-in page without a session)."""
    token = request.cookies.get(COOKIE)
    member = crew_member(db_session, token, _secret(request))
    if member is None or token is None:
        return _to_login()
    message = f"Ticket {moved} is now {to.value.replace('_', ' ')}." if moved and to else ""
    return _route_page(request, db_session, member, token, message=message)


@router.post("/tickets/{ticket_id}")
def move_ticket(request: Request, ticket_id: RowId, db_session: SessionDep,
                to: Annotated[TicketStatus, Form()], csrf: Annotated[str, Form(max_length=64)],
                note: Annotated[str, Form(max_length=4000)] = "") -> Response:
    """One lifecycle move by the crew (on my way, start work, resolved with a note)."""
    token = request.cookies.get(COOKIE)
    member = crew_member(db_session, token, _secret(request))
    if member is None or token is None:
        return _to_login()
    if not form_token_valid(token, _secret(request), csrf):
        return _route_page(request, db_session, member, token, code=403,
                           error="This form has expired: please try again.")
    if to not in CREW_MOVES:
        return _route_page(request, db_session, member, token, code=403,
                           error=f"A crew cannot move a ticket to {to.value}.")
    try:
        ticket = tickets.get(db_session=db_session, ticket_id=ticket_id, viewer=member)
        tickets.transition(db_session=db_session, ticket=ticket, actor=member,
                           move_in=TicketTransition(to=to, note=note.strip()))
    except DomainError as exc:
        db_session.rollback()
        return _route_page(request, db_session, member, token, code=exc.status_code,
                           error=exc.detail)
    if to in _ON_SITE:
        _report_on_site(db_session, ticket, member)
    return RedirectResponse(f"/crew?moved={ticket_id}&to={to.value}#t{ticket_id}",
                            status_code=status.HTTP_303_SEE_OTHER)


def _report_on_site(db_session: SessionDep, ticket: Ticket, member: Principal) -> None:
    """Working at or finishing a job: the crew is at its village (the next plan starts there)."""
    village = ticket_village(db_session, ticket)
    if village is None or member.crew_id is None:
        return
    scheduling.report_position(db_session=db_session, crew_id=member.crew_id,
                               latitude=village.latitude, longitude=village.longitude,
                               actor=member)


@router.get("/static/crew.css")
def stylesheet() -> FileResponse:
    return FileResponse(HERE / "static" / "crew.css", media_type="text/css",
                        headers={"Cache-Control": "max-age=3600"})
