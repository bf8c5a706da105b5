"""Asset register service: validated CRUD over every asset table, and imports from the
simulator's register (common.register.County) and from CSV.

One :class:`AssetKind` per table says which model, which schemas and which references a
row has; the CRUD functions are the same for all. References are checked before writing, so
a village of an unknown township is a clear 422, not a database error; deleting a row that
others still reference is a 409.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.assets import models as m
from api.assets import schemas as s
from api.audit import service as audit
from api.auth.security import Principal
from api.db import Base
from api.errors import Conflict, Invalid, NotFound
from common.register import County

_CHUNK = 500


@dataclass(frozen=True)
class AssetKind:
    """One asset table as the API sees it."""

    name: str  # URL segment and audit entity type, e.g. "villages"
    model: type[Base]
    create: type[BaseModel]
    read: type[BaseModel]
    #: column -> the asset kind it refers to
    references: Mapping[str, str] = field(default_factory=dict)
    #: the column the list endpoint filters on (its parent)
    parent: str | None = None

    @property
    def update(self) -> type[BaseModel]:
        return _UPDATES[self.name]


def _kind(name: str, model: type[Base], create: type[BaseModel],
          read: type[BaseModel] | None = None, parent: str | None = None,
          **references: str) -> AssetKind:
    return AssetKind(name=name, model=model, create=create, read=read or create,
                     references=references, parent=parent)


#: In dependency order: a kind refers only to kinds before it (the import relies on this).
KINDS: dict[str, AssetKind] = {k.name: k for k in (
    _kind("townships", m.Township, s.TownshipCreate),
    _kind("villages", m.Village, s.VillageCreate, parent="township_id",
          township_id="townships"),
    _kind("schemes", m.Scheme, s.SchemeCreate, parent="village_id", village_id="villages"),
    _kind("wells", m.Well, s.WellCreate, parent="scheme_id", scheme_id="schemes"),
    _kind("tanks", m.Tank, s.TankCreate, parent="scheme_id", scheme_id="schemes"),
    _kind("dmas", m.Dma, s.DmaCreate, parent="village_id", village_id="villages"),
    _kind("pipelines", m.Pipeline, s.PipelineCreate, parent="dma_id", dma_id="dmas"),
    _kind("gateways", m.Gateway, s.GatewayCreate, parent="village_id", village_id="villages"),
    _kind("households", m.Household, s.HouseholdCreate, parent="village_id",
          village_id="villages", dma_id="dmas", branch_id="pipelines"),
    _kind("devices", m.Device, s.DeviceCreate, s.DeviceRead, parent="village_id",
          village_id="villages", dma_id="dmas", household_id="households",
          gateway_id="gateways"),
)}
_UPDATES = {name: s.partial_model(kind.create) for name, kind in KINDS.items()}


def kind_named(name: str) -> AssetKind:
    try:
        return KINDS[name]
    except KeyError as exc:
        raise NotFound(f"no asset kind {name!r} (kinds: {', '.join(KINDS)})") from exc


def _row_values(kind: AssetKind, row: Base) -> dict[str, Any]:
    return {name: getattr(row, name) for name in kind.create.model_fields}


def get(*, db_session: Session, kind: AssetKind, asset_id: str) -> Base:
    row = db_session.get(kind.model, asset_id)
    if row is None:
        raise NotFound(f"no {kind.name[:-1]} {asset_id!r}")
    return row


def get_all(*, db_session: Session, kind: AssetKind, parent_id: str | None = None,
            limit: int = 100, offset: int = 0) -> Sequence[Base]:
    model: Any = kind.model
    query = select(model)
    if parent_id is not None and kind.parent is not None:
        query = query.where(getattr(model, kind.parent) == parent_id)
    return db_session.scalars(query.order_by(model.id).limit(limit).offset(offset)).all()


def _check_references(db_session: Session, kind: AssetKind, values: Mapping[str, Any]) -> None:
    for column, target in kind.references.items():
        value = values.get(column)
        if value is not None and db_session.get(KINDS[target].model, value) is None:
            raise Invalid(f"{column}: no {target[:-1]} {value!r}")


def _validated(kind: AssetKind, values: Mapping[str, Any]) -> BaseModel:
    try:
        return kind.create.model_validate(dict(values))
    except ValidationError as exc:
        raise Invalid(f"invalid {kind.name[:-1]}: {exc.errors(include_url=False)}") from exc


def create(*, db_session: Session, kind: AssetKind, asset_in: BaseModel,
           actor: Principal) -> Base:
    values = asset_in.model_dump()
    if db_session.get(kind.model, values["id"]) is not None:
        raise Conflict(f"{kind.name[:-1]} {values['id']!r} exists")
    _check_references(db_session, kind, values)
    row = kind.model(**values)
    db_session.add(row)
    audit.record(db_session=db_session, actor=actor, action=f"asset.{kind.name}.create",
                 entity_type=kind.name, entity_id=values["id"], changes=values)
    db_session.commit()
    return row


def update(*, db_session: Session, kind: AssetKind, row: Base, asset_in: BaseModel,
           actor: Principal) -> Base:
    changes = asset_in.model_dump(exclude_unset=True)
    merged = {**_row_values(kind, row), **changes}
    _validated(kind, merged)  # the whole row must still be valid (required fields, bounds)
    _check_references(db_session, kind, changes)
    for name, value in changes.items():
        setattr(row, name, value)
    audit.record(db_session=db_session, actor=actor, action=f"asset.{kind.name}.update",
                 entity_type=kind.name, entity_id=merged["id"], changes=changes)
    db_session.commit()
    return row


def delete(*, db_session: Session, kind: AssetKind, row: Base, actor: Principal) -> None:
    asset_id = getattr(row, "id")  # noqa: B009 - every asset table has a string id
    db_session.delete(row)
    try:
        db_session.flush()
    except IntegrityError as exc:
        db_session.rollback()
        raise Conflict(f"{kind.name[:-1]} {asset_id!r} is still referenced by other assets "
                       "or tickets") from exc
    audit.record(db_session=db_session, actor=actor, action=f"asset.{kind.name}.delete",
                 entity_type=kind.name, entity_id=asset_id)
    db_session.commit()


def _upsert(db_session: Session, kind: AssetKind, rows: Sequence[Mapping[str, Any]]) -> int:
    """Insert new rows and update existing ones by id; returns how many were new."""
    model: Any = kind.model
    ids = [row["id"] for row in rows]
    existing: dict[str, Any] = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start:start + _CHUNK]
        existing.update((r.id, r) for r in db_session.scalars(
            select(model).where(model.id.in_(chunk))))
    new_rows = [dict(row) for row in rows if row["id"] not in existing]
    for row in rows:
        current = existing.get(row["id"])
        if current is not None:
            for name, value in row.items():
                setattr(current, name, value)
    if new_rows:
        db_session.execute(insert(model), new_rows)
    return len(new_rows)


def _county_rows(county: County) -> dict[str, list[dict[str, Any]]]:
    gateway_of = {v.id: v.gateway for v in county.villages}
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in KINDS}
    rows["townships"] = [{"id": t.id, "name": t.name} for t in county.townships]
    for v in county.villages:
        rows["villages"].append({
            "id": v.id, "name": v.name, "township_id": v.township,
            "population": v.population, "households": v.households,
            "monitored_households": v.monitored_households,
            "latitude": v.latitude, "longitude": v.longitude})
        rows["schemes"].append({"id": v.id, "name": f"{v.name} water scheme",
                                "village_id": v.id})
    for w in county.wells:
        rows["wells"].append({**w.model_dump(exclude={"village"}), "scheme_id": w.village})
        rows["devices"].append({"id": w.id, "kind": "pump", "village_id": w.village,
                                "gateway_id": gateway_of.get(w.village)})
    for t in county.tanks:
        rows["tanks"].append({"id": t.id, "scheme_id": t.village,
                              "capacity_m3": t.capacity_m3, "height_m": t.height_m})
        rows["devices"].append({"id": t.id, "kind": "tank", "village_id": t.village,
                                "gateway_id": gateway_of.get(t.village)})
    for g in county.gateways:
        rows["gateways"].append({"id": g.id, "village_id": g.village})
    for d in county.dmas:
        rows["dmas"].append({"id": d.id, "village_id": d.village,
                             "inflow_meter": d.inflow_meter, "connections": d.connections,
                             "avg_pressure_m": d.avg_pressure_m})
        rows["pipelines"].append({"id": f"{d.id}-main", "dma_id": d.id, "kind": "main",
                                  "length_km": d.mains_km})
        rows["pipelines"].extend({"id": b.id, "dma_id": d.id, "kind": "branch",
                                  "length_km": b.length_km} for b in d.branches)
        rows["devices"].append({"id": d.inflow_meter, "kind": "dma_inflow",
                                "village_id": d.village, "dma_id": d.id,
                                "gateway_id": gateway_of.get(d.village)})
    for h in county.households:
        rows["households"].append({"id": h.id, "village_id": h.village, "dma_id": h.dma,
                                   "branch_id": h.branch, "persons": h.persons,
                                   "monitored": h.monitored})
        rows["devices"].append({"id": h.meter, "kind": "meter", "village_id": h.village,
                                "dma_id": h.dma, "household_id": h.id,
                                "gateway_id": gateway_of.get(h.village), "address": h.meter})
    for a in county.analysers:
        rows["devices"].append({"id": a.id, "kind": "quality", "village_id": a.village,
                                "gateway_id": gateway_of.get(a.village)})
    return rows


def _complete(kind: AssetKind, rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows validated by the kind's schema, defaults filled in."""
    return [_validated(kind, row).model_dump(mode="json") for row in rows]


def import_county(*, db_session: Session, county: County, actor: Principal) -> dict[str, int]:
    """Upsert the whole register, all or nothing; returns rows per kind."""
    counts: dict[str, int] = {}
    for name, rows in _county_rows(county).items():
        kind = KINDS[name]
        validated = _complete(kind, rows)
        _upsert(db_session, kind, validated)
        db_session.flush()
        counts[name] = len(validated)
    audit.record(db_session=db_session, actor=actor, action="asset.import.register",
                 entity_type="register", entity_id=f"seed-{county.seed}", changes=counts)
    db_session.commit()
    return counts


def import_csv(*, db_session: Session, kind: AssetKind, text: str,
               actor: Principal) -> dict[str, int]:
    """Upsert rows of one kind from CSV (header = field names), all or nothing."""
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "id" not in reader.fieldnames:
        raise Invalid("CSV needs a header row with at least an id column")
    unknown = set(reader.fieldnames) - set(kind.create.model_fields)
    if unknown:
        raise Invalid(f"unknown columns for {kind.name}: {', '.join(sorted(unknown))}")
    rows: list[dict[str, Any]] = []
    for line, raw in enumerate(reader, start=2):
        values = {k: (v if v != "" else None) for k, v in raw.items() if k is not None}
        values = {k: v for k, v in values.items() if v is not None}
        try:
            row = kind.create.model_validate(values).model_dump(mode="json")
        except ValidationError as exc:
            raise Invalid(f"CSV line {line}: {exc.errors(include_url=False)}") from exc
        _check_references_in_batch(db_session, kind, row, rows)
        rows.append(row)
    created = _upsert(db_session, kind, rows)
    counts = {"rows": len(rows), "created": created, "updated": len(rows) - created}
    audit.record(db_session=db_session, actor=actor, action=f"asset.{kind.name}.import_csv",
                 entity_type=kind.name, entity_id="csv", changes=counts)
    db_session.commit()
    return counts


def _check_references_in_batch(db_session: Session, kind: AssetKind, row: Mapping[str, Any],
                               batch: Sequence[Mapping[str, Any]]) -> None:
    own_ids = {r["id"] for r in batch} | {row["id"]}
    for column, target in kind.references.items():
        value = row.get(column)
        if value is None or (target == kind.name and value in own_ids):
            continue
        if db_session.get(KINDS[target].model, value) is None:
            raise Invalid(f"CSV row {row['id']!r}: {column}: no {target[:-1]} {value!r}")
