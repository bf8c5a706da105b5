"""Dependency aliases for routes: the session, the settings, the caller and role checks.

``require_role(Role.ADMIN, Role.DISPATCHER)`` admits those user roles; pass
``services=(ServiceKind.ANALYSIS,)`` to admit service tokens of those kinds as well.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.orm import Session

from api.auth import service as auth_service
from api.auth.models import Role, ServiceKind
from api.auth.security import Principal
from api.db import get_session
from api.errors import Forbidden, Unauthorized
from common.settings import ApiSettings

TOKEN_URL = "/api/v1/auth/token"
oauth2_scheme = OAuth2PasswordBearer(tokenUrl=TOKEN_URL, auto_error=False)

SessionDep = Annotated[Session, Depends(get_session)]

#: Database integers are 32-bit on PostgreSQL: bound ids and offsets so a huge number is a
#: 422, not a database error.
MAX_ROW_ID = 2**31 - 1
RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]


def get_api_settings(request: Request) -> ApiSettings:
    settings: ApiSettings = request.app.state.api_settings
    return settings


ApiSettingsDep = Annotated[ApiSettings, Depends(get_api_settings)]


def get_current_principal(
    request: Request,
    db_session: SessionDep,
    token: Annotated[str | None, Depends(oauth2_scheme)],
) -> Principal:
    """The caller named by the bearer token (login JWT or API key); 401 without one."""
    if not token:
        raise Unauthorized("not authenticated: send Authorization: Bearer <token>")
    secret: str = request.app.state.jwt_secret
    return auth_service.principal_for_bearer(db_session=db_session, token=token,
                                             jwt_secret=secret)


CurrentUser = Annotated[Principal, Depends(get_current_principal)]


def require_role(
    *roles: Role, services: tuple[ServiceKind, ...] = ()
) -> Callable[[Principal], Principal]:
    """A dependency admitting only these user roles (and service kinds)."""
    allowed_roles = frozenset(roles)
    allowed_services = frozenset(services)

    def check(principal: CurrentUser) -> Principal:
        if principal.role is not None and principal.role in allowed_roles:
            return principal
        if principal.service is not None and principal.service in allowed_services:
            return principal
        wanted = sorted(r.value for r in allowed_roles) + sorted(
            f"service:{s.value}" for s in allowed_services)
        raise Forbidden(f"role {principal.role_name} may not do this (needs one of: "
                        f"{', '.join(wanted)})")

    return check


AdminUser = Annotated[Principal, Depends(require_role(Role.ADMIN))]
Dispatcher = Annotated[Principal, Depends(require_role(Role.ADMIN, Role.DISPATCHER))]
AnyUser = Annotated[
    Principal,
    Depends(require_role(Role.ADMIN, Role.DISPATCHER, Role.CREW_MEMBER, Role.VIEWER)),
]
