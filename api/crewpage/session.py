"""Who is using the crew page: the login JWT kept in an HttpOnly cookie, and form tokens.

Sign-in is the API's password check and the same JWT ``POST /api/v1/auth/token`` issues;
the page keeps it in a cookie (HttpOnly, SameSite=Strict, path /crew) because plain forms
cannot send an Authorization header. Every form also carries a token derived from the JWT
(HMAC-SHA256 with the app's secret), so a form posted from elsewhere is refused.
"""

from __future__ import annotations

import hashlib
import hmac

from sqlalchemy.orm import Session

from api.auth import service as auth_service
from api.auth.models import Role
from api.auth.security import Principal
from api.errors import Unauthorized

COOKIE = "rw_crew"
COOKIE_PATH = "/crew"


def form_token(jwt_token: str, secret: str) -> str:
    """The anti-forgery token of forms shown to the holder of ``jwt_token``."""
    return hmac.new(secret.encode(), f"crewpage:{jwt_token}".encode(),
                    hashlib.sha256).hexdigest()[:32]


def form_token_valid(jwt_token: str, secret: str, submitted: str) -> bool:
    return hmac.compare_digest(form_token(jwt_token, secret), submitted)


def crew_member(db_session: Session, jwt_token: str | None, secret: str) -> Principal | None:
    """The signed-in crew member of this cookie, or None (no cookie, expired, not a crew
    member linked to a crew)."""
    if not jwt_token:
        return None
    try:
        principal = auth_service.principal_for_bearer(db_session=db_session, token=jwt_token,
                                                      jwt_secret=secret)
    except Unauthorized:
        return None
    if principal.role is not Role.CREW_MEMBER or principal.crew_id is None:
        return None
    return principal
