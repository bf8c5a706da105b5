"""Ticket routes. Views parse and authorise; the lifecycle rules live in the service."""

from __future__ import annotations

import logging
from typing import Annotated

import psycopg
from fastapi import APIRouter, FastAPI, Query, Request, Response, status
from pydantic import BaseModel
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from api.audit import service as audit
from api.audit.schemas import AuditRead
from api.auth.security import Principal
from api.db import read_only_factory
from api.deps import (
    MAX_ROW_ID,
    AnyUser,
    ApiSettingsDep,
    Dispatcher,
    Offset,
    RowId,
    SessionDep,
)
from api.tickets import changes, service, verification
from api.tickets.cache import AsyncVersionReader, ListingCache
from api.tickets.models import Priority, TicketStatus
from api.tickets.schemas import TicketCreate, TicketRead, TicketTransition, TicketUpdate

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1/tickets", tags=["tickets"])


def listing_cache_of(app: FastAPI) -> ListingCache:
    """The app's cache of ticket list pages (made on first use)."""
    cache: ListingCache | None = getattr(app.state, "ticket_listing_cache", None)
    if cache is None:
        cache = ListingCache()
        app.state.ticket_listing_cache = cache
    return cache


def _page_from_thread(app: FastAPI, viewer: Principal, query: service.PageQuery,
                      version: int | None, version_known: bool) -> bytes:
    factory: sessionmaker[Session] = read_only_factory(app)
    with factory() as db_session:
        return service.get_page_json(db_session=db_session, cache=listing_cache_of(app),
                                     viewer=viewer, query=query, version=version,
                                     version_known=version_known)


@router.get("", response_model=list[TicketRead])
async def list_tickets(
    request: Request,
    viewer: AnyUser,
    ticket_status: Annotated[list[TicketStatus] | None, Query(alias="status")] = None,
    crew_id: Annotated[int | None, Query(ge=1, le=MAX_ROW_ID)] = None,
    village_id: Annotated[str | None, Query(max_length=64)] = None,
    priority: Priority | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> Response:
    """Soonest due first; ``status`` may repeat. A crew member sees only their crew's.

    Pages are cached per process until a ticket changes (api/tickets/cache.py): on
    PostgreSQL a cached page costs one version read on the event loop; anything else runs
    in a worker thread."""
    app = request.app
    query = service.PageQuery(statuses=tuple(ticket_status or ()), crew_id=crew_id,
                              village_id=village_id, priority=priority, limit=limit,
                              offset=offset)
    reader: AsyncVersionReader | None = getattr(app.state, "version_reader", None)
    version: int | None = None
    version_known = False
    if reader is not None:
        try:
            version, version_known = await reader.read(changes.TICKETS), True
        except psycopg.Error as exc:  # the thread path reads it (or fails) the usual way
            log.warning("ticket version read failed: %s", exc)
        cached = listing_cache_of(app).get(query.cache_key(viewer), version) \
            if version is not None else None
        if cached is not None:
            return Response(content=cached, media_type="application/json")
    body = await run_in_threadpool(_page_from_thread, app, viewer, query, version,
                                   version_known)
    return Response(content=body, media_type="application/json")


@router.post("", response_model=TicketRead, status_code=status.HTTP_201_CREATED)
def create_ticket(ticket_in: TicketCreate, db_session: SessionDep, settings: ApiSettingsDep,
                  actor: Dispatcher) -> TicketRead:
    """Open a ticket by hand: a hotline (12314) complaint or a dispatcher's own job."""
    return service.to_read(service.create(db_session=db_session, ticket_in=ticket_in,
                                          actor=actor, settings=settings))


@router.get("/{ticket_id}", response_model=TicketRead)
def get_ticket(ticket_id: RowId, db_session: SessionDep, viewer: AnyUser) -> TicketRead:
    return service.to_read(service.get(db_session=db_session, ticket_id=ticket_id,
                                       viewer=viewer))


@router.patch("/{ticket_id}", response_model=TicketRead)
def update_ticket(ticket_id: RowId, ticket_in: TicketUpdate, db_session: SessionDep,
                  settings: ApiSettingsDep, actor: Dispatcher) -> TicketRead:
    ticket = service.get(db_session=db_session, ticket_id=ticket_id, viewer=actor)
    return service.to_read(service.update(db_session=db_session, ticket=ticket,
                                          ticket_in=ticket_in, actor=actor,
                                          settings=settings))


@router.post("/{ticket_id}/transitions", response_model=TicketRead)
def move_ticket(ticket_id: RowId, move_in: TicketTransition, db_session: SessionDep,
                actor: AnyUser) -> TicketRead:
    """One lifecycle move. 409 for a move the current status does not allow, 403 for a role
    that may not make it, 422 for a missing crew, note or reason."""
    ticket = service.get(db_session=db_session, ticket_id=ticket_id, viewer=actor)
    return service.to_read(service.transition(db_session=db_session, ticket=ticket,
                                              move_in=move_in, actor=actor))


@router.get("/{ticket_id}/history", response_model=list[AuditRead])
def ticket_history(ticket_id: RowId, db_session: SessionDep, viewer: AnyUser) -> list[AuditRead]:
    """The ticket's audit trail, newest first."""
    service.get(db_session=db_session, ticket_id=ticket_id, viewer=viewer)
    entries = audit.get_all(db_session=db_session, entity_type="ticket",
                            entity_id=str(ticket_id), limit=1000)
    return [AuditRead.model_validate(entry) for entry in entries]


class VerificationOutcome(BaseModel):
    ticket_id: int
    result: verification.Result
    detail: str


@router.post("/verify", response_model=list[VerificationOutcome])
def verify_now(request: Request, db_session: SessionDep, settings: ApiSettingsDep,
               _actor: Dispatcher) -> list[VerificationOutcome]:
    """Judge every resolved ticket from telemetry now (also run periodically)."""
    outcomes = verification.verify_resolved(db_session=db_session,
                                            influx=request.app.state.influx, settings=settings)
    return [VerificationOutcome(ticket_id=o.ticket_id, result=o.result, detail=o.detail)
            for o in outcomes]
