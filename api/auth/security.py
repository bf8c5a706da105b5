"""Password hashing (argon2id), login JWTs (HS256) and service-token (API key) handling."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from api.auth.models import Role, ServiceKind
from api.db import utcnow
from api.errors import Unauthorized

JWT_ALGORITHM = "HS256"
#: API keys look like ``rw_<prefix>_<secret>``; the prefix finds the row, the hash checks it.
TOKEN_MARK = "rw_"
_PREFIX_CHARS = 10

_hasher = PasswordHasher()


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a signed-in user or a service token."""

    name: str
    role: Role | None = None
    user_id: int | None = None
    crew_id: int | None = None
    service: ServiceKind | None = None

    @property
    def actor(self) -> str:
        """How the audit trail names this caller."""
        return f"user:{self.name}" if self.user_id is not None else f"token:{self.name}"

    @property
    def role_name(self) -> str:
        if self.role is not None:
            return self.role.value
        return f"service:{self.service.value}" if self.service else "unknown"


SYSTEM = Principal(name="system")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def password_needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def issue_access_token(*, username: str, secret: str, minutes: int) -> str:
    """A JWT naming the user; the role is re-read from the database (api.auth.cache keeps
    it a few seconds). Each token is unique (``jti``), so a cache keyed on the token never
    mixes two sign-ins up."""
    now = utcnow()
    claims = {"sub": username, "iat": now, "exp": now + timedelta(minutes=minutes),
              "jti": secrets.token_urlsafe(12)}
    return jwt.encode(claims, secret, algorithm=JWT_ALGORITHM)


@dataclass(frozen=True, slots=True)
class AccessClaims:
    username: str
    expires_at: float  # POSIX seconds


def read_access_claims(token: str, *, secret: str) -> AccessClaims:
    """The username and expiry of a valid, unexpired token; :class:`Unauthorized` otherwise."""
    try:
        claims = jwt.decode(token, secret, algorithms=[JWT_ALGORITHM],
                            options={"require": ["sub", "exp"]})
    except jwt.PyJWTError as exc:
        raise Unauthorized(f"invalid token: {exc}") from exc
    subject = claims["sub"]
    if not isinstance(subject, str):
        raise Unauthorized("invalid token: bad subject")
    return AccessClaims(username=subject, expires_at=float(claims["exp"]))


def read_access_token(token: str, *, secret: str) -> str:
    """The username in a valid, unexpired token; :class:`Unauthorized` otherwise."""
    return read_access_claims(token, secret=secret).username


@dataclass(frozen=True, slots=True)
class NewApiKey:
    token: str
    prefix: str
    sha256: str


def new_api_key() -> NewApiKey:
    prefix = secrets.token_hex(_PREFIX_CHARS // 2)
    token = f"{TOKEN_MARK}{prefix}_{secrets.token_urlsafe(32)}"
    return NewApiKey(token=token, prefix=prefix, sha256=api_key_sha256(token))


def api_key_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def api_key_prefix(token: str) -> str | None:
    """The lookup prefix of something shaped like an API key, else ``None``."""
    if not token.startswith(TOKEN_MARK):
        return None
    prefix, sep, _ = token[len(TOKEN_MARK):].partition("_")
    return prefix if sep and len(prefix) == _PREFIX_CHARS else None


_SECRET_PART = re.compile(r"^[A-Za-z0-9_-]{32,128}$")


def api_key_parts(token: str) -> NewApiKey | None:
    """An API key given from outside (``rw_<10 hex>_<32+ url-safe characters>``) split into
    what is stored, or ``None`` if it is not shaped like one."""
    prefix = api_key_prefix(token)
    if prefix is None or not all(c in "0123456789abcdef" for c in prefix):
        return None
    secret = token[len(TOKEN_MARK) + len(prefix) + 1:]
    if not _SECRET_PART.match(secret):
        return None
    return NewApiKey(token=token, prefix=prefix, sha256=api_key_sha256(token))


def api_key_matches(token: str, stored_sha256: str) -> bool:
    return hmac.compare_digest(api_key_sha256(token), stored_sha256)
