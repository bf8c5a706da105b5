"""Dependency aliases for routes: the session, the settings, the caller and role checks.

``require_role(Role.ADMIN, Role.DISPATCHER)`` admits those user roles; pass
``services=(ServiceKind.ANALYSIS,)`` to admit service tokens of those kinds as well.

The caller is resolved once per token and process for a few seconds (api.auth.cache): a
repeat needs no database and no worker thread, which is most of what a cheap request costs.
Dependencies that do no I/O are ``async def`` so FastAPI runs them on the event loop instead
of handing each to the thread pool.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from api.auth import cache as principal_cache
from api.auth import service as auth_service
from api.auth.models import Role, ServiceKind
from api.auth.security import Principal
from api.db import get_read_session, get_session
from api.errors import Forbidden, Unauthorized
from common.settings import ApiSettings

TOKEN_URL = "/api/v1/auth/token"
oauth2_scheme = OAuth2PasswordBearer(tokenUrl=TOKEN_URL, auto_error=False)

SessionDep = Annotated[Session, Depends(get_session)]
#: For routes that only read: no transaction round trips, ORM writes refused.
ReadSessionDep = Annotated[Session, Depends(get_read_session)]

#: Database integers are 32-bit on PostgreSQL: bound ids and offsets so a huge number is a
#: 422, not a database error.
MAX_ROW_ID = 2**31 - 1
RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]


async def get_api_settings(request: Request) -> ApiSettings:
    settings: ApiSettings = request.app.state.api_settings
    return settings


ApiSettingsDep = Annotated[ApiSettings, Depends(get_api_settings)]


def principal_cache_of(app: FastAPI) -> principal_cache.PrincipalCache:
    """The app's cache of resolved bearer tokens (made on first use)."""
    cache: principal_cache.PrincipalCache | None = getattr(app.state, "principal_cache", None)
    if cache is None:
        cache = principal_cache.PrincipalCache()
        app.state.principal_cache = cache
    return cache


def _resolve_uncached(app: FastAPI, token: str) -> auth_service.ResolvedBearer:
    """Look the token up in the database (in a worker thread, with its own short session)."""
    factory: sessionmaker[Session] = app.state.session_factory
    with factory() as db_session:
        return auth_service.resolve_bearer(db_session=db_session, token=token,
                                           jwt_secret=app.state.jwt_secret)


async def get_current_principal(
    request: Request,
    token: Annotated[str | None, Depends(oauth2_scheme)],
) -> Principal:
    """The caller named by the bearer token (login JWT or API key); 401 without one."""
    if not token:
        raise Unauthorized("not authenticated: send Authorization: Bearer <token>")
    cache = principal_cache_of(request.app)
    principal = cache.get(token)
    if principal is not None:
        return principal
    generation = principal_cache.generation()
    resolved = await run_in_threadpool(_resolve_uncached, request.app, token)
    cache.put(token, resolved.principal, expires_in_s=resolved.expires_in_s,
              generation=generation)
    return resolved.principal


CurrentUser = Annotated[Principal, Depends(get_current_principal)]


async def known_caller(request: Request) -> Principal | None:
    """The caller named by the request's bearer token if this process resolved that token
    moments ago (the cache above), else ``None``: no database, no error (a route's short
    way for repeat callers; the full dependency resolves or refuses the rest)."""
    token = await oauth2_scheme(request)
    return principal_cache_of(request.app).get(token) if token else None


def require_role(
    *roles: Role, services: tuple[ServiceKind, ...] = ()
) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency admitting only these user roles (and service kinds)."""
    allowed_roles = frozenset(roles)
    allowed_services = frozenset(services)

    async def check(principal: CurrentUser) -> Principal:
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
