"""Alert routes: intake from the analysis (PUT by key), list and filter, acknowledge.

The PUT takes a short way for the request the analysis sends by the thousand (a JSON body,
a bearer token this process resolved moments ago, :class:`IntakeRoute`); everything else
goes through FastAPI's dependency solving and body validation as usual.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request, Response, status
from fastapi.routing import APIRoute
from pydantic import ValidationError

from api.alerts import service
from api.alerts.models import AlertRecord
from api.alerts.schemas import Acknowledge, AlertRead
from api.alerts.writer import IntakeWriter
from api.auth.models import Role, ServiceKind
from api.auth.security import Principal
from api.deps import Dispatcher, Offset, SessionDep, known_caller, require_role
from api.errors import Invalid
from common.alerts import Alert, AlertKind, AlertStatus, Severity

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])

#: Who may send alerts: admins and the analysis' service tokens.
admit_sender = require_role(Role.ADMIN, services=(ServiceKind.ANALYSIS,))
Sender = Annotated[Principal, Depends(admit_sender)]
Reader = Annotated[Principal, Depends(require_role(
    Role.ADMIN, Role.DISPATCHER, Role.CREW_MEMBER, Role.VIEWER,
    services=(ServiceKind.ANALYSIS,)))]
AlertKey = Annotated[str, Path(min_length=3, max_length=200, pattern=r"^[a-z_]+:[^\s]+$")]


def _read(record: AlertRecord) -> AlertRead:
    return AlertRead.model_validate(record)


def intake_writer_of(app: FastAPI) -> IntakeWriter:
    """The app's alert intake writer (made on first use; the lifespan closes it)."""
    writer: IntakeWriter | None = getattr(app.state, "intake_writer", None)
    if writer is None:
        state = app.state
        writer = IntakeWriter(state.session_factory, rules=state.ticket_rules,
                              plans=state.emergency_plans.values(), settings=state.api_settings)
        state.intake_writer = writer
    return writer


async def _take_in(request: Request, alert: Alert, sender: Principal) -> Response:
    received = await intake_writer_of(request.app).receive(alert, sender)
    return Response(content=received.body, media_type="application/json",
                    status_code=status.HTTP_201_CREATED if received.created
                    else status.HTTP_200_OK)


async def _well_formed(request: Request) -> tuple[Alert, Principal] | None:
    """The alert and its sender, when the request is what the analysis sends (JSON body
    that validates, its key the URL's, a bearer token resolved moments ago); ``None`` for
    anything else. A known caller who may not send alerts is refused here, as the full
    way's dependency would refuse them (before looking at the body)."""
    if request.headers.get("content-type") != "application/json":
        return None
    caller = await known_caller(request)
    if caller is None:
        return None
    try:
        alert = Alert.model_validate_json(await request.body())
    except ValidationError:
        return None
    if alert.key != request.path_params.get("key"):
        return None
    return alert, await admit_sender(caller)


class IntakeRoute(APIRoute):
    """The alert PUT with a short way for the analysis' requests.

    FastAPI's way spends more of the event loop than the write does: it parses the body to
    Python objects, validates them, and solves the dependencies of path, body and caller.
    A request from a caller whose token this process already resolved (api.auth.cache),
    with a JSON body, is taken in directly: the body is validated from its bytes in one
    pydantic call (``model_validate_json``), and the caller checked by the same role check.
    Any other request (no or another content type, a token not cached, a body or key that
    does not validate, a body key that differs from the URL's) goes FastAPI's way, which
    answers it as before: its errors, 401s and 422s are FastAPI's own. The OpenAPI schema is
    the route's as declared.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        fastapi_way = super().get_route_handler()

        async def handle(request: Request) -> Response:
            well_formed = await _well_formed(request)
            if well_formed is None:
                return await fastapi_way(request)
            return await _take_in(request, *well_formed)

        return handle


async def put_alert(key: AlertKey, alert: Alert, request: Request,
                    sender: Sender) -> Response:
    """Create or update the alert named ``key`` (idempotent: a repeat changes nothing).

    A new open alert with a ticket rule joins its problem's ticket (or opens one: one ticket
    per problem, docs/api.md); new evidence updates the same alert; ``status = resolved`` is
    recorded; shortage alerts drive the emergency plans. The answer comes once the change is
    committed: the process's intake writer commits every alert waiting at that moment in
    one transaction (api/alerts/writer.py).
    """
    if alert.key != key:
        raise Invalid(f"body key {alert.key!r} differs from the URL's {key!r}")
    return await _take_in(request, alert, sender)


router.add_api_route("/{key}", put_alert, methods=["PUT"], response_model=AlertRead,
                     responses={201: {"model": AlertRead, "description": "a new alert"}},
                     route_class_override=IntakeRoute)


@router.get("", response_model=list[AlertRead])
def list_alerts(
    db_session: SessionDep,
    _user: Reader,
    alert_status: Annotated[AlertStatus | None, Query(alias="status")] = None,
    kind: AlertKind | None = None,
    severity: Severity | None = None,
    village: Annotated[str | None, Query(max_length=64)] = None,
    dma: Annotated[str | None, Query(max_length=64)] = None,
    acknowledged: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> list[AlertRead]:
    """Most recently updated first."""
    records = service.get_all(db_session=db_session, status=alert_status, kind=kind,
                              severity=severity, village=village, dma=dma,
                              acknowledged=acknowledged, limit=limit, offset=offset)
    return [_read(record) for record in records]


@router.get("/{key}", response_model=AlertRead)
def get_alert(key: AlertKey, db_session: SessionDep, _user: Reader) -> AlertRead:
    return _read(service.get(db_session=db_session, key=key))


@router.post("/{key}/acknowledge", response_model=AlertRead)
def acknowledge_alert(key: AlertKey, body: Acknowledge, db_session: SessionDep,
                      actor: Dispatcher) -> AlertRead:
    """Mark the alert as seen (admins and dispatchers); repeating it changes nothing."""
    record = service.get(db_session=db_session, key=key)
    return _read(service.acknowledge(db_session=db_session, record=record,
                                                 actor=actor, note=body.note))
