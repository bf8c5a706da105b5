"""The registry of every api/ table: import a package's models here so that Alembic
(``api/migrations/env.py``) and ``create_all`` see them. See docs/api.md."""

from __future__ import annotations

from api.alerts import models as alerts_models
from api.assets import models as assets_models
from api.audit import models as audit_models
from api.auth import models as auth_models
from api.crews import models as crews_models
from api.db import Base
from api.emergency import models as emergency_models
from api.notify import models as notify_models
from api.tickets import models as tickets_models

__all__ = [
    "Base",
    "alerts_models",
    "assets_models",
    "audit_models",
    "auth_models",
    "crews_models",
    "emergency_models",
    "notify_models",
    "tickets_models",
]
