"""Users and service tokens: create, authenticate, resolve a bearer token to a principal."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from sqlalchemy import bindparam, select
from sqlalchemy import update as sql_update
from sqlalchemy.orm import Session

from api.audit import service as audit
from api.auth.cache import invalidate_all
from api.auth.models import Role, ServiceKind, ServiceToken, User
from api.auth.schemas import UserCreate, UserUpdate
from api.auth.security import (
    Principal,
    api_key_matches,
    api_key_parts,
    api_key_prefix,
    hash_password,
    new_api_key,
    password_needs_rehash,
    read_access_claims,
    verify_password,
)
from api.crews.models import Crew
from api.db import utcnow
from api.errors import Conflict, Invalid, NotFound, Unauthorized

LAST_USED_RESOLUTION = timedelta(minutes=1)
# A real hash to verify against when the user is unknown, so a wrong username takes as long
# as a wrong password (no user enumeration by timing).
_DUMMY_HASH = hash_password("not-a-real-password")


def principal_of(user: User) -> Principal:
    return Principal(name=user.username, role=user.role, user_id=user.id, crew_id=user.crew_id)


def get_by_username(*, db_session: Session, username: str) -> User | None:
    return db_session.scalar(select(User).where(User.username == username))


def get(*, db_session: Session, user_id: int) -> User:
    user = db_session.get(User, user_id)
    if user is None:
        raise NotFound(f"no user {user_id}")
    return user


def get_all(*, db_session: Session) -> Sequence[User]:
    return db_session.scalars(select(User).order_by(User.username)).all()


def authenticate(*, db_session: Session, username: str, password: str) -> User:
    """The active user with this password; :class:`Unauthorized` for anything else."""
    user = get_by_username(db_session=db_session, username=username)
    if user is None:
        verify_password(_DUMMY_HASH, password)
        raise Unauthorized("wrong username or password")
    if not verify_password(user.password_hash, password) or not user.active:
        raise Unauthorized("wrong username or password")
    if password_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
        db_session.commit()
    return user


def _check_crew_link(db_session: Session, role: Role, crew_id: int | None) -> None:
    if role is Role.CREW_MEMBER and crew_id is None:
        raise Invalid("a crew member must be linked to a crew (crew_id)")
    if crew_id is not None and db_session.get(Crew, crew_id) is None:
        raise Invalid(f"no crew {crew_id}")


def create(*, db_session: Session, user_in: UserCreate, actor: Principal) -> User:
    if get_by_username(db_session=db_session, username=user_in.username) is not None:
        raise Conflict(f"user {user_in.username!r} exists")
    _check_crew_link(db_session, user_in.role, user_in.crew_id)
    user = User(
        username=user_in.username,
        full_name=user_in.full_name,
        phone=user_in.phone,
        password_hash=hash_password(user_in.password.get_secret_value()),
        role=user_in.role,
        crew_id=user_in.crew_id,
        active=True,
    )
    db_session.add(user)
    db_session.flush()
    audit.record(db_session=db_session, actor=actor, action="user.create", entity_type="user",
                 entity_id=user.username,
                 changes={"role": user.role.value, "crew_id": user.crew_id})
    db_session.commit()
    return user


def update(*, db_session: Session, user: User, user_in: UserUpdate, actor: Principal) -> User:
    changes = user_in.model_dump(exclude_unset=True, exclude={"password"})
    role = user_in.role if user_in.role is not None else user.role
    crew_id = changes.get("crew_id", user.crew_id)
    _check_crew_link(db_session, role, crew_id)
    for name, value in changes.items():
        setattr(user, name, value)
    if user_in.password is not None:
        user.password_hash = hash_password(user_in.password.get_secret_value())
        changes["password"] = "changed"
    audit.record(db_session=db_session, actor=actor, action="user.update", entity_type="user",
                 entity_id=user.username, changes=changes)
    db_session.commit()
    invalidate_all()
    return user


def get_service_tokens(*, db_session: Session) -> Sequence[ServiceToken]:
    return db_session.scalars(select(ServiceToken).order_by(ServiceToken.name)).all()


def create_service_token(
    *, db_session: Session, name: str, kind: ServiceKind, actor: Principal
) -> tuple[ServiceToken, str]:
    """A new API key; the plain token is returned once and never stored."""
    if db_session.scalar(select(ServiceToken).where(ServiceToken.name == name)) is not None:
        raise Conflict(f"service token {name!r} exists")
    key = new_api_key()
    row = ServiceToken(name=name, kind=kind, prefix=key.prefix, token_sha256=key.sha256)
    db_session.add(row)
    audit.record(db_session=db_session, actor=actor, action="token.create",
                 entity_type="service_token", entity_id=name, changes={"kind": kind.value})
    db_session.commit()
    return row, key.token


class TokenOutcome(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


def ensure_service_token(*, db_session: Session, name: str, kind: ServiceKind, token: str,
                         actor: Principal) -> TokenOutcome:
    """Make ``name`` accept exactly the API key ``token`` (idempotent).

    For provisioning from a secret: a missing token is created with this key, an existing
    one whose key, kind or revocation differs is brought in line (audited), and a repeat
    changes nothing. :class:`Invalid` for a key not shaped like ``rw_<10 hex>_<32+ chars>``;
    :class:`Conflict` when another token already uses its prefix.
    """
    key = api_key_parts(token)
    if key is None:
        raise Invalid("not an API key: expected rw_<10 hex characters>_<at least 32 "
                      "URL-safe characters> (python -m api generate-token makes one)")
    row = db_session.scalar(select(ServiceToken).where(ServiceToken.name == name))
    holder = db_session.scalar(select(ServiceToken).where(ServiceToken.prefix == key.prefix))
    if holder is not None and holder.name != name:
        raise Conflict(f"service token {holder.name!r} already uses this key's prefix")
    if row is None:
        db_session.add(ServiceToken(name=name, kind=kind, prefix=key.prefix,
                                    token_sha256=key.sha256))
        audit.record(db_session=db_session, actor=actor, action="token.create",
                     entity_type="service_token", entity_id=name,
                     changes={"kind": kind.value, "provisioned": True})
        db_session.commit()
        return TokenOutcome.CREATED
    changes: dict[str, object] = {}
    if row.kind is not kind:
        changes["kind"] = kind.value
    if row.token_sha256 != key.sha256:
        changes["key"] = "replaced"
    if not row.active:
        changes["active"] = True
    if not changes:
        return TokenOutcome.UNCHANGED
    row.kind, row.prefix, row.token_sha256, row.active = kind, key.prefix, key.sha256, True
    audit.record(db_session=db_session, actor=actor, action="token.update",
                 entity_type="service_token", entity_id=name, changes=changes)
    db_session.commit()
    invalidate_all()
    return TokenOutcome.UPDATED


def revoke_service_token(*, db_session: Session, name: str, actor: Principal) -> ServiceToken:
    row = db_session.scalar(select(ServiceToken).where(ServiceToken.name == name))
    if row is None:
        raise NotFound(f"no service token {name!r}")
    row.active = False
    audit.record(db_session=db_session, actor=actor, action="token.revoke",
                 entity_type="service_token", entity_id=name)
    db_session.commit()
    invalidate_all()
    return row


@dataclass(frozen=True, slots=True)
class ResolvedBearer:
    """A bearer token's caller and how long the token itself stays valid (None: no expiry)."""

    principal: Principal
    expires_in_s: float | None


# Prebuilt statements: the bearer look-up runs on most requests, so it reads only the
# columns it needs (no ORM objects) and skips re-building the statement each time.
_TOKEN_BY_PREFIX = select(
    ServiceToken.id, ServiceToken.name, ServiceToken.kind, ServiceToken.active,
    ServiceToken.token_sha256, ServiceToken.last_used_at,
).where(ServiceToken.prefix == bindparam("prefix"))
_USER_BY_NAME = select(User.id, User.role, User.crew_id, User.active).where(
    User.username == bindparam("username"))
_TOKEN_USED = sql_update(ServiceToken).where(ServiceToken.id == bindparam("token_id")).values(
    last_used_at=bindparam("used_at")).execution_options(synchronize_session=False)


def resolve_bearer(*, db_session: Session, token: str, jwt_secret: str) -> ResolvedBearer:
    """Resolve ``Authorization: Bearer <token>``: an API key or a login JWT.

    Raises :class:`Unauthorized` for an unknown, revoked or expired token, or a user who is
    unknown or disabled.
    """
    prefix = api_key_prefix(token)
    if prefix is not None:
        row = db_session.execute(_TOKEN_BY_PREFIX, {"prefix": prefix}).first()
        if row is None or not row.active or not api_key_matches(token, row.token_sha256):
            raise Unauthorized("invalid or revoked API key")
        now = utcnow()
        if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
            # not on every request: a write per call costs
            db_session.execute(_TOKEN_USED, {"token_id": row.id, "used_at": now})
            db_session.commit()
        return ResolvedBearer(Principal(name=row.name, service=row.kind), None)
    claims = read_access_claims(token, secret=jwt_secret)
    user = db_session.execute(_USER_BY_NAME, {"username": claims.username}).first()
    if user is None or not user.active:
        raise Unauthorized("user unknown or disabled")
    principal = Principal(name=claims.username, role=user.role, user_id=user.id,
                          crew_id=user.crew_id)
    return ResolvedBearer(principal, claims.expires_at - time.time())


def principal_for_bearer(*, db_session: Session, token: str, jwt_secret: str) -> Principal:
    """Resolve ``Authorization: Bearer <token>``: an API key or a login JWT."""
    return resolve_bearer(db_session=db_session, token=token, jwt_secret=jwt_secret).principal
