"""Asset routes, the same five for every kind (``/api/v1/assets/<kind>``), plus imports.

Anyone signed in (and service tokens) may read; admins and dispatchers create and update;
admins delete and import.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Query, Response, UploadFile, status
from pydantic import BaseModel

from api.assets import service
from api.assets.service import KINDS, AssetKind
from api.auth.models import Role, ServiceKind
from api.auth.security import Principal
from api.deps import AdminUser, Dispatcher, Offset, SessionDep, require_role
from api.errors import Invalid
from common.register import County

router = APIRouter(prefix="/api/v1/assets", tags=["assets"])

Reader = Annotated[Principal, Depends(require_role(
    Role.ADMIN, Role.DISPATCHER, Role.CREW_MEMBER, Role.VIEWER,
    services=(ServiceKind.ANALYSIS, ServiceKind.GATEWAY)))]
MAX_CSV_BYTES = 50 * 1024 * 1024


class ImportCounts(BaseModel):
    counts: dict[str, int]


def _read(kind: AssetKind, row: Any) -> Any:
    return kind.read.model_validate(row)


def _add_routes(kind: AssetKind) -> None:
    """Register list/get/create/update/delete for one asset kind."""
    path = f"/{kind.name}"
    parent = kind.parent or "parent"
    singular = kind.name[:-1]

    def list_assets(db_session: SessionDep, _user: Reader,
                    parent_id: str | None = Query(default=None, alias=parent,
                                                  max_length=64),
                    limit: int = Query(default=100, ge=1, le=10000),
                    offset: Offset = 0) -> list[Any]:
        rows = service.get_all(db_session=db_session, kind=kind, parent_id=parent_id,
                               limit=limit, offset=offset)
        return [_read(kind, row) for row in rows]

    def get_asset(asset_id: str, db_session: SessionDep, _user: Reader) -> Any:
        return _read(kind, service.get(db_session=db_session, kind=kind, asset_id=asset_id))

    def create_asset(asset_in: BaseModel, db_session: SessionDep, actor: Dispatcher) -> Any:
        return _read(kind, service.create(db_session=db_session, kind=kind,
                                          asset_in=asset_in, actor=actor))

    def update_asset(asset_id: str, asset_in: BaseModel, db_session: SessionDep,
                     actor: Dispatcher) -> Any:
        row = service.get(db_session=db_session, kind=kind, asset_id=asset_id)
        return _read(kind, service.update(db_session=db_session, kind=kind, row=row,
                                          asset_in=asset_in, actor=actor))

    def delete_asset(asset_id: str, db_session: SessionDep, actor: AdminUser) -> Response:
        row = service.get(db_session=db_session, kind=kind, asset_id=asset_id)
        service.delete(db_session=db_session, kind=kind, row=row, actor=actor)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    # The body models are per kind: FastAPI reads them from the annotations.
    create_asset.__annotations__["asset_in"] = kind.create
    update_asset.__annotations__["asset_in"] = kind.update
    list_type: Any = list[kind.read]  # type: ignore[name-defined]
    router.add_api_route(path, list_assets, methods=["GET"], response_model=list_type,
                         name=f"list_{kind.name}", summary=f"List {kind.name}")
    router.add_api_route(f"{path}/{{asset_id}}", get_asset, methods=["GET"],
                         response_model=kind.read, name=f"get_{singular}",
                         summary=f"Get one {singular}")
    router.add_api_route(path, create_asset, methods=["POST"], response_model=kind.read,
                         status_code=status.HTTP_201_CREATED, name=f"create_{singular}",
                         summary=f"Create a {singular}")
    router.add_api_route(f"{path}/{{asset_id}}", update_asset, methods=["PATCH"],
                         response_model=kind.read, name=f"update_{singular}",
                         summary=f"Update a {singular}")
    router.add_api_route(f"{path}/{{asset_id}}", delete_asset, methods=["DELETE"],
                         status_code=status.HTTP_204_NO_CONTENT, name=f"delete_{singular}",
                         summary=f"Delete a {singular} (refused while referenced)")


@router.post("/import/register", response_model=ImportCounts)
def import_register(county: County, db_session: SessionDep, admin: AdminUser) -> ImportCounts:
    """Import (upsert) the simulator's register.json, all or nothing."""
    return ImportCounts(counts=service.import_county(db_session=db_session, county=county,
                                                     actor=admin))


@router.post("/import/csv/{kind}", response_model=ImportCounts)
def import_csv(kind: str, db_session: SessionDep, admin: AdminUser,
               file: Annotated[UploadFile, File(description="CSV, header = field names")]
               ) -> ImportCounts:
    """Import (upsert) rows of one asset kind from a CSV file, all or nothing."""
    asset_kind = service.kind_named(kind)
    raw = file.file.read(MAX_CSV_BYTES + 1)
    if len(raw) > MAX_CSV_BYTES:
        raise Invalid("CSV file too large")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Invalid("CSV must be UTF-8") from exc
    return ImportCounts(counts=service.import_csv(db_session=db_session, kind=asset_kind,
                                                  text=text, actor=admin))


for _kind in KINDS.values():
    _add_routes(_kind)
