"""The ticket service's command line.

    python -m api                       migrate, then serve (uvicorn, settings.api.workers)
    python -m api serve [--no-migrate]
    python -m api migrate               upgrade the database to the newest schema
    python -m api create-admin NAME     the first admin; password from stdin or prompted
    python -m api create-user NAME --role dispatcher [--crew-id N]
    python -m api create-token NAME --kind analysis|gateway   prints the API key once
    python -m api generate-token        print a new API key (no database; for secrets)
    python -m api ensure-token NAME --kind analysis --from-env VAR
                                        register the API key in $VAR under NAME (idempotent)
    python -m api import-register var/simulator/register.json
    python -m api verify [--every S]    verify resolved tickets from telemetry (now, or every S s)
    python -m api background            reminders, re-planning and verification in one
                                        process (beside API workers with the loops off)
    python -m api notify                the notification reminder loop as its own process

``background``, ``notify`` and ``verify --every`` run until SIGTERM or SIGINT
(``--passes N``: N passes).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import logging
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

import uvicorn
from pydantic import SecretStr, ValidationError
from sqlalchemy.orm import Session
from uvicorn.config import STARTUP_FAILURE
from uvicorn.protocols.http.h11_impl import H11Protocol

from api import migrate
from api.assets import service as assets
from api.auth import service as auth
from api.auth.models import Role, ServiceKind
from api.auth.schemas import UserCreate
from api.auth.security import SYSTEM, new_api_key
from api.background import run_background
from api.db import make_engine, session_factory
from api.errors import DomainError
from api.notify.config import NotifyConfig, load_notify_config
from api.notify.scheduled import deliver_due_once
from api.notify.sender import WebhookSender, make_client
from api.periodic import run_periodically, stop_on_signals
from api.tickets import verification
from api.workers import serve_workers
from common.influx import InfluxClient
from common.register import County
from common.settings import MissingSecrets, Settings, get_settings

log = logging.getLogger(__name__)


def _say(text: str, *, error: bool = False) -> None:
    print(text, file=sys.stderr if error else sys.stdout)  # noqa: T201 - CLI output


class NoDelayH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with Nagle's algorithm off on every connection.

    uvicorn writes a response's head and body in two sends. asyncio turns Nagle off only for
    sockets whose ``proto`` is TCP, and the listening sockets of several workers
    (api/workers.py) have ``proto`` 0, so on a keep-alive connection a small body waits for the
    client's delayed ACK of the head: about 40 ms per request (the analysis' alert PUTs, any
    small JSON answer). Setting ``TCP_NODELAY`` here sends both at once.
    """

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        raw = transport.get_extra_info("socket")
        if raw is not None and raw.family in (socket.AF_INET, socket.AF_INET6):
            try:
                raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError as exc:  # a socket closing already; uvicorn handles the rest
                log.debug("TCP_NODELAY not set: %s", exc)
        super().connection_made(transport)


HTTP_PROTOCOL = f"{__name__}:{NoDelayH11Protocol.__name__}"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m api", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command")
    serve = commands.add_parser("serve", help="migrate and serve the HTTP API")
    serve.add_argument("--no-migrate", action="store_true")
    commands.add_parser("migrate", help="upgrade the database to the newest schema")
    admin = commands.add_parser("create-admin", help="create an admin user")
    admin.add_argument("username")
    admin.add_argument("--password-stdin", action="store_true",
                       help="read the password from stdin instead of prompting")
    user = commands.add_parser("create-user", help="create a user with a role")
    user.add_argument("username")
    user.add_argument("--role", choices=[r.value for r in Role], required=True)
    user.add_argument("--crew-id", type=int)
    user.add_argument("--full-name", default="")
    user.add_argument("--password-stdin", action="store_true")
    token = commands.add_parser("create-token", help="create a service token (API key)")
    token.add_argument("name")
    token.add_argument("--kind", choices=[k.value for k in ServiceKind], required=True)
    commands.add_parser("generate-token", help="print a new API key (stores nothing)")
    ensure = commands.add_parser(
        "ensure-token", help="register the API key held in an environment variable")
    ensure.add_argument("name")
    ensure.add_argument("--kind", choices=[k.value for k in ServiceKind], required=True)
    ensure.add_argument("--from-env", required=True, metavar="VAR",
                        help="environment variable holding the key (rw_<prefix>_<secret>)")
    register = commands.add_parser("import-register", help="import register.json")
    register.add_argument("path", type=Path)
    verify = commands.add_parser("verify", help="verify resolved tickets from telemetry")
    verify.add_argument("--every", type=_positive_seconds, metavar="SECONDS",
                        help="repeat every SECONDS until stopped (default: one pass)")
    verify.add_argument("--passes", type=_positive_int, metavar="N",
                        help="with --every: stop after N passes")
    commands.add_parser("background", help="run the reminder loop, the re-plan loop and "
                        "periodic verification in this process (docs/api.md)")
    notify = commands.add_parser("notify", help="send due notifications and reminders")
    notify.add_argument("--every", type=_positive_seconds, metavar="SECONDS",
                        help="seconds between passes (default: RURALWATER_API__NOTIFY_"
                             "INTERVAL_S)")
    notify.add_argument("--passes", type=_positive_int, metavar="N",
                        help="stop after N passes (default: until SIGTERM or SIGINT)")
    return parser


def _positive_seconds(text: str) -> float:
    value = float(text)
    if not 0 < value <= 7 * 86400:
        raise argparse.ArgumentTypeError("seconds must be > 0 and at most a week")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _password(from_stdin: bool) -> SecretStr:
    if from_stdin:
        return SecretStr(sys.stdin.readline().rstrip("\n"))
    first = getpass.getpass("password: ")
    if first != getpass.getpass("again: "):
        raise SystemExit("passwords differ")
    return SecretStr(first)


def _session(settings: Settings) -> Session:
    return session_factory(make_engine(settings.api.database_url))()


def _create_user(settings: Settings, username: str, role: Role, crew_id: int | None,
                 full_name: str, from_stdin: bool) -> int:
    try:
        user_in = UserCreate(username=username, password=_password(from_stdin), role=role,
                             crew_id=crew_id, full_name=full_name)
    except ValidationError as exc:
        _say(f"invalid user: {exc}", error=True)
        return 2
    with _session(settings) as db_session:
        user = auth.create(db_session=db_session, user_in=user_in, actor=SYSTEM)
    _say(f"created {user.role.value} {user.username} (id {user.id})")
    return 0


def _verify(settings: Settings, every_s: float | None, passes: int | None) -> int:
    engine = make_engine(settings.api.database_url)
    factory = session_factory(engine)
    with InfluxClient(settings.influx) as influx:

        def one_pass() -> None:
            with factory() as db_session:
                outcomes = verification.verify_resolved(db_session=db_session, influx=influx,
                                                        settings=settings.api)
            for outcome in outcomes:
                _say(f"ticket {outcome.ticket_id}: {outcome.result} ({outcome.detail})")

        try:
            if every_s is None:
                one_pass()
                return 0
            with stop_on_signals() as stop:
                run_periodically(one_pass, every_s=every_s, passes=passes, stop=stop)
        finally:
            engine.dispose()
    return 0


def _notify(settings: Settings, every_s: float | None, passes: int | None) -> int:
    """The reminder loop on its own (run one; serve with RURALWATER_API__NOTIFY_LOOP=false)."""
    config = (load_notify_config(settings.api.notify_config_file)
              if settings.api.notify_config_file else NotifyConfig())
    engine = make_engine(settings.api.database_url)
    factory = session_factory(engine)
    interval = every_s if every_s is not None else float(settings.api.notify_interval_s)
    with make_client(config.timeout_s) as http:
        sender = WebhookSender(http, config.retry)

        def one_pass() -> None:
            sent = deliver_due_once(factory, config, sender)
            if sent:
                log.info("sent %d notification copies", sent)

        try:
            with stop_on_signals() as stop:
                run_periodically(one_pass, every_s=interval, passes=passes, stop=stop)
        finally:
            engine.dispose()
    return 0


def _ensure_token(settings: Settings, name: str, kind: ServiceKind, variable: str) -> int:
    token = os.environ.get(variable, "").strip()
    if not token:
        _say(f"error: environment variable {variable} is unset or empty", error=True)
        return 2
    with _session(settings) as db_session:
        outcome = auth.ensure_service_token(db_session=db_session, name=name, kind=kind,
                                            token=token, actor=SYSTEM)
    _say(f"service token {name} ({kind.value}): {outcome.value}")
    return 0


def _serve(settings: Settings, run_migrations: bool) -> int:
    if run_migrations:
        migrate.upgrade(settings.api.database_url)
    config = uvicorn.Config("api.asgi:app", host=settings.api.host, port=settings.api.port,
                            log_level=settings.log_level.lower(), http=HTTP_PROTOCOL)
    if settings.api.workers > 1:  # a socket per worker: see api/workers.py
        return serve_workers(config, settings.api.workers)
    server = uvicorn.Server(config)
    server.run()
    return 0 if server.started else STARTUP_FAILURE


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Carry out one parsed command."""
    command = args.command or "serve"
    if command in ("serve", "background", "verify"):
        # They read telemetry to verify repairs (the JWT secret is create_app's own check).
        settings.require_secrets("influx")
    if command == "serve":
        return _serve(settings, not getattr(args, "no_migrate", False))
    if command == "migrate":
        migrate.upgrade(settings.api.database_url)
        _say("database at the newest schema")
        return 0
    if command == "create-admin":
        return _create_user(settings, args.username, Role.ADMIN, None, "",
                            args.password_stdin)
    if command == "create-user":
        return _create_user(settings, args.username, Role(args.role), args.crew_id,
                            args.full_name, args.password_stdin)
    if command == "create-token":
        with _session(settings) as db_session:
            _, token = auth.create_service_token(db_session=db_session, name=args.name,
                                                 kind=ServiceKind(args.kind), actor=SYSTEM)
        _say(token)
        return 0
    if command == "generate-token":
        _say(new_api_key().token)
        return 0
    if command == "ensure-token":
        return _ensure_token(settings, args.name, ServiceKind(args.kind), args.from_env)
    if command == "notify":
        return _notify(settings, args.every, args.passes)
    if command == "background":
        with stop_on_signals() as stop:
            run_background(settings, stop)
        return 0
    if command == "import-register":
        county = County.read(args.path)
        with _session(settings) as db_session:
            counts = assets.import_county(db_session=db_session, county=county, actor=SYSTEM)
        _say(json.dumps(counts))
        return 0
    if command == "verify":
        return _verify(settings, args.every, args.passes)
    raise SystemExit(f"unknown command {command}")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = get_settings()
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        return run(args, settings)
    except DomainError as exc:
        _say(f"error: {exc.detail}", error=True)
        return 1
    except MissingSecrets as exc:
        _say(f"error: {exc}", error=True)
        return 2
