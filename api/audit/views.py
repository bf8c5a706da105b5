"""The audit trail, for admins and dispatchers."""

from __future__ import annotations

from fastapi import APIRouter, Query

from api.audit import service
from api.audit.schemas import AuditRead
from api.deps import Dispatcher, Offset, SessionDep

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


@router.get("", response_model=list[AuditRead])
def list_entries(
    db_session: SessionDep,
    _user: Dispatcher,
    entity_type: str | None = None,
    entity_id: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    limit: int = Query(default=100, ge=1, le=1000),
    offset: Offset = 0,
) -> list[AuditRead]:
    """Newest first."""
    entries = service.get_all(db_session=db_session, entity_type=entity_type,
                              entity_id=entity_id, actor=actor, action=action, limit=limit,
                              offset=offset)
    return [AuditRead.model_validate(entry) for entry in entries]
