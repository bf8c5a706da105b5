"""Domain errors raised by service functions and turned into HTTP answers by the app.

Services never raise ``HTTPException``: they raise these, and ``api.main`` maps each class
to its status code with a JSON body ``{"detail": ..., "code": ...}``.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of the errors a client can cause; ``status_code`` is the HTTP answer."""

    status_code = 400
    code = "bad_request"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


class Conflict(DomainError):
    """The request clashes with the current state (duplicate id, wrong lifecycle step)."""

    status_code = 409
    code = "conflict"


class InvalidTransition(Conflict):
    code = "invalid_transition"


class Forbidden(DomainError):
    """Authenticated, but this principal may not do this."""

    status_code = 403
    code = "forbidden"


class Unauthorized(DomainError):
    status_code = 401
    code = "unauthorized"


class Invalid(DomainError):
    """Well-formed but semantically wrong input (a village of an unknown township)."""

    status_code = 422
    code = "invalid"
