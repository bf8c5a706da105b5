"""Sign-in (OAuth2 password flow -> JWT), the caller's identity, users and service tokens."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, status
from fastapi.security import OAuth2PasswordRequestForm

from api.auth import service
from api.auth.schemas import (
    AccessToken,
    ServiceTokenCreate,
    ServiceTokenIssued,
    ServiceTokenRead,
    UserCreate,
    UserRead,
    UserUpdate,
)
from api.auth.security import issue_access_token
from api.deps import AdminUser, ApiSettingsDep, CurrentUser, RowId, SessionDep

router = APIRouter(prefix="/api/v1", tags=["auth"])


@router.post("/auth/token", response_model=AccessToken)
def login(
    request: Request,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    db_session: SessionDep,
    settings: ApiSettingsDep,
) -> AccessToken:
    """OAuth2 password flow: username and password in, a bearer JWT out."""
    user = service.authenticate(db_session=db_session, username=form.username,
                                password=form.password)
    token = issue_access_token(username=user.username, secret=request.app.state.jwt_secret,
                               minutes=settings.access_token_minutes)
    return AccessToken(access_token=token, expires_in=settings.access_token_minutes * 60)


@router.get("/auth/me")
def me(principal: CurrentUser) -> dict[str, str | int | None]:
    """Who the bearer token names (a user or a service token)."""
    return {"name": principal.name, "role": principal.role_name,
            "crew_id": principal.crew_id, "user_id": principal.user_id}


@router.get("/users", response_model=list[UserRead])
def list_users(db_session: SessionDep, _admin: AdminUser) -> list[UserRead]:
    return [UserRead.model_validate(u) for u in service.get_all(db_session=db_session)]


@router.post("/users", response_model=UserRead, status_code=status.HTTP_201_CREATED)
def create_user(user_in: UserCreate, db_session: SessionDep, admin: AdminUser) -> UserRead:
    return UserRead.model_validate(
        service.create(db_session=db_session, user_in=user_in, actor=admin))


@router.patch("/users/{user_id}", response_model=UserRead)
def update_user(user_id: RowId, user_in: UserUpdate, db_session: SessionDep,
                admin: AdminUser) -> UserRead:
    user = service.get(db_session=db_session, user_id=user_id)
    return UserRead.model_validate(
        service.update(db_session=db_session, user=user, user_in=user_in, actor=admin))


@router.get("/service-tokens", response_model=list[ServiceTokenRead])
def list_service_tokens(db_session: SessionDep, _admin: AdminUser) -> list[ServiceTokenRead]:
    return [ServiceTokenRead.model_validate(row)
            for row in service.get_service_tokens(db_session=db_session)]


@router.post("/service-tokens", response_model=ServiceTokenIssued,
             status_code=status.HTTP_201_CREATED)
def create_service_token(token_in: ServiceTokenCreate, db_session: SessionDep,
                         admin: AdminUser) -> ServiceTokenIssued:
    """A new API key for the analysis or a gateway; the key is shown only in this answer."""
    row, token = service.create_service_token(db_session=db_session, name=token_in.name,
                                              kind=token_in.kind, actor=admin)
    return ServiceTokenIssued(**ServiceTokenRead.model_validate(row).model_dump(), token=token)


@router.delete("/service-tokens/{name}", response_model=ServiceTokenRead)
def revoke_service_token(name: str, db_session: SessionDep,
                         admin: AdminUser) -> ServiceTokenRead:
    return ServiceTokenRead.model_validate(
        service.revoke_service_token(db_session=db_session, name=name, actor=admin))
