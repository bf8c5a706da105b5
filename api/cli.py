"""The ticket service's command line.

    python -m api                       migrate, then serve (uvicorn, settings.api.workers)
    python -m api serve [--no-migrate]
    python -m api migrate               upgrade the database to the newest schema
    python -m api create-admin NAME     the first admin; password from stdin or prompted
    python -m api create-user NAME --role dispatcher [--crew-id N]
    python -m api create-token NAME --kind analysis|gateway   prints the API key once
    python -m api import-register var/simulator/register.json
    python -m api verify                verify resolved tickets from telemetry now
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import uvicorn
from pydantic import SecretStr, ValidationError
from sqlalchemy.orm import Session

from api import migrate
from api.assets import service as assets
from api.auth import service as auth
from api.auth.models import Role, ServiceKind
from api.auth.schemas import UserCreate
from api.auth.security import SYSTEM
from api.db import make_engine, session_factory
from api.errors import DomainError
from api.tickets import verification
from common.influx import InfluxClient
from common.register import County
from common.settings import Settings, get_settings


def _say(text: str, *, error: bool = False) -> None:
    print(text, file=sys.stderr if error else sys.stdout)  # noqa: T201 - CLI output


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
    register = commands.add_parser("import-register", help="import register.json")
    register.add_argument("path", type=Path)
    commands.add_parser("verify", help="verify resolved tickets from telemetry now")
    return parser


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


def _verify(settings: Settings) -> int:
    with _session(settings) as db_session, InfluxClient(settings.influx) as influx:
        outcomes = verification.verify_resolved(db_session=db_session, influx=influx,
                                                settings=settings.api)
    for outcome in outcomes:
        _say(f"ticket {outcome.ticket_id}: {outcome.result} ({outcome.detail})")
    return 0


def _serve(settings: Settings, run_migrations: bool) -> int:
    if run_migrations:
        migrate.upgrade(settings.api.database_url)
    uvicorn.run("api.asgi:app", host=settings.api.host, port=settings.api.port,
                workers=settings.api.workers, log_level=settings.log_level.lower())
    return 0


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Carry out one parsed command."""
    command = args.command or "serve"
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
    if command == "import-register":
        county = County.read(args.path)
        with _session(settings) as db_session:
            counts = assets.import_county(db_session=db_session, county=county, actor=SYSTEM)
        _say(json.dumps(counts))
        return 0
    if command == "verify":
        return _verify(settings)
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
