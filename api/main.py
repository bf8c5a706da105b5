"""The app factory: ``create_app(settings)`` builds the ticket service's FastAPI app.

Everything the routes need hangs off ``app.state`` (settings, engine, session factory, JWT
secret, ticket rules, InfluxDB client), built here once and passed in, so tests build an app
per database with their own settings.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import logging
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import DataError, IntegrityError

from api.alerts.views import router as alerts_router
from api.assets.views import router as assets_router
from api.audit.views import router as audit_router
from api.auth.views import router as auth_router
from api.crews.views import router as crews_router
from api.db import make_engine, session_factory
from api.deps import SessionDep
from api.emergency.plans import PlanDefinition, default_plan, load_plan
from api.errors import DomainError
from api.notify.config import NotifyConfig, load_notify_config
from api.notify.scheduled import ReminderLoop
from api.notify.sender import WebhookSender, make_client
from api.tickets.cache import AsyncVersionReader
from api.tickets.rules import load_rules
from api.tickets.views import router as tickets_router
from common.influx import InfluxClient
from common.settings import PLACEHOLDER_SECRETS, ApiSettings, Settings, get_settings

log = logging.getLogger(__name__)

# The busiest routes first: Starlette tries routes in order, and each miss costs a few
# microseconds (the alert PUT matched behind every auth and asset route took ~300 us).
# The prefixes do not overlap, so the order changes nothing else.
CORE_ROUTERS: tuple[APIRouter, ...] = (
    alerts_router, tickets_router, auth_router, assets_router, crews_router, audit_router)
#: Routers of the other api/ packages, mounted when the package is present: each module
#: exposes ``router`` (an ``APIRouter`` carrying its own ``/api/v1/...`` prefix).
PACKAGE_ROUTERS: tuple[str, ...] = (
    "api.notify.views",
    "api.emergency.views",
    "api.reports.views",
    "api.scheduling.views",
    "api.crewpage.views",
)


class ConfigurationError(RuntimeError):
    """The service cannot start with these settings."""


def resolve_jwt_secret(settings: Settings) -> str:
    """The secret that signs login tokens.

    Production requires ``RURALWATER_API__JWT_SECRET``. In development an unset secret is
    generated once and kept (mode 0600) in ``jwt_secret_file``, so several workers and
    restarts share it.
    """
    api_settings = settings.api
    if api_settings.jwt_secret is not None:
        value = api_settings.jwt_secret.get_secret_value()
        if value.strip().lower() in PLACEHOLDER_SECRETS or len(value) < 16:
            raise ConfigurationError("RURALWATER_API__JWT_SECRET is a placeholder or shorter "
                                     "than 16 characters")
        return value
    if settings.environment == "production":
        raise ConfigurationError("production needs RURALWATER_API__JWT_SECRET")
    return _development_secret(api_settings.jwt_secret_file)


def _development_secret(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(descriptor, "w") as handle:
        secret = secrets.token_urlsafe(48)
        handle.write(secret)
    log.info("generated a development JWT secret in %s", path)
    return secret


async def _domain_error(_request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, DomainError):  # registered for DomainError only
        raise exc
    headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
    return JSONResponse(status_code=exc.status_code,
                        content={"detail": exc.detail, "code": exc.code}, headers=headers)


async def _integrity_error(_request: Request, exc: Exception) -> JSONResponse:
    log.info("integrity error answered 409: %s", exc)
    return JSONResponse(status_code=409, content={
        "detail": "the change conflicts with existing data (duplicate or still referenced)",
        "code": "conflict"})


async def _data_error(_request: Request, exc: Exception) -> JSONResponse:
    log.info("data error answered 422: %s", exc)
    return JSONResponse(status_code=422, content={
        "detail": "a value does not fit the database (too long, out of range or a NUL "
                  "character)", "code": "invalid"})


def _mount_package_routers(app: FastAPI) -> None:
    for module_name in PACKAGE_ROUTERS:
        if importlib.util.find_spec(module_name.rsplit(".", 1)[0]) is None:
            continue
        if importlib.util.find_spec(module_name) is None:
            continue
        module = importlib.import_module(module_name)
        app.include_router(module.router)


def _health_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1/health", tags=["health"])

    @router.get("")
    def health() -> dict[str, str]:
        """Liveness: the process answers (no database access; the benchmark's baseline)."""
        return {"status": "ok"}

    @router.get("/db")
    def database_health(db_session: SessionDep) -> dict[str, str]:
        """Readiness: the database answers."""
        db_session.execute(text("SELECT 1"))
        return {"status": "ok"}

    return router


def load_emergency_plans(settings: ApiSettings) -> dict[str, PlanDefinition]:
    """The configured plan files, or the shipped seasonal-shortage plan."""
    plans = [load_plan(path) for path in settings.emergency_plan_files] or [default_plan()]
    return {plan.name: plan for plan in plans}


def create_app(settings: Settings | None = None) -> FastAPI:
    """The ticket service for ``settings`` (default: from the environment)."""
    settings = settings or get_settings()
    jwt_secret = resolve_jwt_secret(settings)
    ticket_rules = load_rules(settings.api.ticket_rules_file)
    emergency_plans = load_emergency_plans(settings.api)
    notify_config = (load_notify_config(settings.api.notify_config_file)
                     if settings.api.notify_config_file else NotifyConfig())
    engine = make_engine(settings.api.database_url)
    influx = InfluxClient(settings.influx)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loop: ReminderLoop | None = None
        http = make_client(notify_config.timeout_s)
        # bound to this event loop: cached ticket pages are answered on it
        app.state.version_reader = AsyncVersionReader.for_url(settings.api.database_url)
        if settings.api.notify_loop:
            loop = ReminderLoop(app.state.session_factory, notify_config,
                                WebhookSender(http, notify_config.retry),
                                interval_s=settings.api.notify_interval_s)
            loop.start()
        try:
            yield
        finally:
            writer = getattr(app.state, "intake_writer", None)
            if writer is not None:  # finish the alerts it was given
                await asyncio.to_thread(writer.close)
            if loop is not None:
                loop.stop()
            if app.state.version_reader is not None:
                await app.state.version_reader.close()
                app.state.version_reader = None
            http.close()
            influx.close()
            engine.dispose()

    app = FastAPI(title="ruralwater ticket service", version="1.0.0", lifespan=lifespan,
                  description="Asset register, alert intake, repair tickets and crews "
                              "(docs/api.md).")
    app.state.settings = settings
    app.state.api_settings = settings.api
    app.state.engine = engine
    app.state.session_factory = session_factory(engine)
    app.state.jwt_secret = jwt_secret
    app.state.ticket_rules = ticket_rules
    app.state.influx = influx
    app.state.emergency_plans = emergency_plans
    app.state.notify_config = notify_config
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(IntegrityError, _integrity_error)
    app.add_exception_handler(DataError, _data_error)
    app.include_router(_health_router())
    for router in CORE_ROUTERS:
        app.include_router(router)
    _mount_package_routers(app)
    return app
