"""HTTP routes for notifications: list them, acknowledge one (mount with no prefix)."""

from __future__ import annotations

from fastapi import APIRouter, Query

from api.auth.models import Role
from api.deps import AnyUser, SessionDep
from api.errors import Forbidden
from api.notify import service
from api.notify.schemas import NotificationRead

router = APIRouter(prefix="/api/v1/notifications", tags=["notifications"])


@router.get("", response_model=list[NotificationRead])
def list_notifications(db_session: SessionDep, principal: AnyUser,
                       open_only: bool = Query(default=False, alias="open"),
                       subject: str | None = None,
                       limit: int = Query(default=100, ge=1, le=1000),
                       offset: int = Query(default=0, ge=0)) -> list[NotificationRead]:
    """Newest first; a crew member sees only their crew's."""
    crew_id = principal.crew_id if principal.role is Role.CREW_MEMBER else None
    if principal.role is Role.CREW_MEMBER and crew_id is None:
        return []
    rows = service.get_all(db_session=db_session, open_only=open_only, subject=subject,
                           crew_id=crew_id, limit=limit, offset=offset)
    return [NotificationRead.model_validate(row) for row in rows]


@router.post("/{notification_id}/acknowledge", response_model=NotificationRead)
def acknowledge(notification_id: int, db_session: SessionDep,
                principal: AnyUser) -> NotificationRead:
    """Stop the reminders (viewers may not)."""
    if principal.role is Role.VIEWER:
        raise Forbidden("a viewer may not acknowledge notifications")
    notification = service.acknowledge(db_session=db_session, notification_id=notification_id,
                                       actor=principal)
    return NotificationRead.model_validate(notification)
