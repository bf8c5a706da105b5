"""Verification from telemetry: is a resolved ticket's problem really gone?

- leak tickets: the DMA's minimum night flow (02:00-04:00 local) must be back to its
  baseline for N complete nights after the repair; one failing night reopens the ticket;
- valve tickets: the meter reports its valve open after the repair;
- offline-device tickets: readings (or a gateway's online status) arrive after the repair;
- other tickets: the alert they came from resolved after the repair; fresh evidence on an
  alert that is still open reopens them.

Pure judgement functions take numbers; :func:`verify_resolved` reads InfluxDB
(common.influx.InfluxClient), judges, and moves tickets (audited, as the system).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.alerts.models import AlertRecord
from api.assets.models import Device, Dma, Gateway, Household
from api.auth.security import SYSTEM
from api.db import utcnow
from api.tickets import service
from api.tickets.models import Ticket, TicketStatus, TicketType
from api.tickets.schemas import TicketTransition
from common.alerts import AlertStatus
from common.influx import InfluxClient, InfluxError
from common.schema import STATUS_MEASUREMENT
from common.settings import ApiSettings

log = logging.getLogger(__name__)

NIGHT_START = time(2, 0)
NIGHT_END = time(4, 0)
#: Flow is averaged over buckets of this many minutes before taking the night minimum.
NIGHT_BUCKET_MIN = 15
BASELINE_EVIDENCE_KEYS = ("night_baseline_m3h", "baseline_m3h")


class Result(StrEnum):
    VERIFIED = "verified"
    REOPEN = "reopen"
    PENDING = "pending"


@dataclass(frozen=True, slots=True)
class Judgement:
    result: Result
    detail: str
    figures: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Outcome:
    ticket_id: int
    result: Result
    detail: str


# ---------------------------------------------------------------- pure judgement


def night_window(night: date, utc_offset_hours: float) -> tuple[datetime, datetime]:
    """The UTC start and end of the night-flow window (02:00-04:00 local) of local ``night``."""
    offset = timedelta(hours=utc_offset_hours)
    start = datetime.combine(night, NIGHT_START, tzinfo=UTC) - offset
    end = datetime.combine(night, NIGHT_END, tzinfo=UTC) - offset
    return start, end


def nights_after(moment: datetime, now: datetime, utc_offset_hours: float) -> list[date]:
    """Local nights whose window starts after ``moment`` and has ended by ``now``."""
    offset = timedelta(hours=utc_offset_hours)
    night = (moment + offset).date()
    nights: list[date] = []
    while True:
        start, end = night_window(night, utc_offset_hours)
        if end > now:
            return nights
        if start >= moment:
            nights.append(night)
        night += timedelta(days=1)


def night_minimum(samples: Sequence[tuple[datetime, float]], night: date,
                  utc_offset_hours: float) -> float | None:
    """The smallest bucket mean (m3/h) inside the night's window, ``None`` without data."""
    start, end = night_window(night, utc_offset_hours)
    values = [flow for moment, flow in samples if start <= moment < end and math.isfinite(flow)]
    return min(values) if values else None


def judge_leak(night_minima: Sequence[tuple[date, float | None]], baseline_m3h: float,
               settings: ApiSettings) -> Judgement:
    """Verified after ``verify_leak_nights`` good nights, reopen on the first bad one."""
    limit = baseline_m3h * (1 + settings.verify_night_flow_tolerance) \
        + settings.verify_night_flow_margin_m3h
    good = 0
    figures: dict[str, Any] = {"baseline_m3h": round(baseline_m3h, 4),
                               "limit_m3h": round(limit, 4), "nights": {}}
    for night, minimum in night_minima:
        figures["nights"][night.isoformat()] = None if minimum is None else round(minimum, 4)
        if minimum is None:
            continue
        if minimum > limit:
            return Judgement(Result.REOPEN, f"night of {night}: minimum night flow "
                             f"{minimum:.3f} m3/h above {limit:.3f} m3/h", figures)
        good += 1
        if good >= settings.verify_leak_nights:
            return Judgement(Result.VERIFIED, f"{good} nights at baseline "
                             f"(<= {limit:.3f} m3/h)", figures)
    return Judgement(Result.PENDING, f"{good} of {settings.verify_leak_nights} nights at "
                     "baseline so far", figures)


def judge_device(readings_after: int, online_after: bool, hours_since: float,
                 settings: ApiSettings) -> Judgement:
    figures = {"readings_after_repair": readings_after, "online": online_after}
    if readings_after > 0 or online_after:
        return Judgement(Result.VERIFIED, "readings resumed after the repair", figures)
    if hours_since >= settings.verify_device_window_h:
        return Judgement(Result.REOPEN, f"no readings {hours_since:.1f} h after the repair",
                         figures)
    return Judgement(Result.PENDING, "waiting for readings", figures)


def judge_valve(last_valve: str | None, hours_since: float,
                settings: ApiSettings) -> Judgement:
    figures = {"valve": last_valve}
    if last_valve == "open":
        return Judgement(Result.VERIFIED, "the meter reports its valve open", figures)
    if hours_since >= settings.verify_device_window_h:
        state = last_valve or "no reading"
        return Judgement(Result.REOPEN, f"valve still {state} {hours_since:.1f} h after the "
                         "repair", figures)
    return Judgement(Result.PENDING, f"valve {last_valve or 'not yet reported'}", figures)


def judge_by_alert(alert: AlertRecord | None, resolved_at: datetime) -> Judgement:
    if alert is None:
        return Judgement(Result.PENDING, "no alert or telemetry rule: verify by hand", {})
    figures = {"alert_status": alert.status.value}
    if alert.status is AlertStatus.RESOLVED:
        return Judgement(Result.VERIFIED, "the alert resolved", figures)
    if alert.updated_at > resolved_at:
        return Judgement(Result.REOPEN, "the alert has fresh evidence after the repair",
                         figures)
    return Judgement(Result.PENDING, "the alert is still open", figures)


# ---------------------------------------------------------------- telemetry


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _ms_to_datetime(ms: float) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def dma_inflow_buckets(influx: InfluxClient, dma: str, start: datetime,
                       end: datetime) -> list[tuple[datetime, float]]:
    """Mean DMA inflow (m3/h) per bucket of ``NIGHT_BUCKET_MIN`` minutes."""
    series = influx.query(
        f'SELECT mean("flow_m3h") FROM "dma_inflow" WHERE "dma" = {_quote(dma)} '
        f"AND time >= '{_rfc3339(start)}' AND time < '{_rfc3339(end)}' "
        f"GROUP BY time({NIGHT_BUCKET_MIN}m) fill(none)")
    samples = []
    for item in series:
        for moment_ms, flow in item.values:
            if flow is not None:
                samples.append((_ms_to_datetime(moment_ms), float(flow)))
    return samples


def _count_readings(influx: InfluxClient, device: str, since: datetime) -> int:
    measurements = ",".join(f'"{name}"' for name in ("meter", "pump", "dma_inflow", "tank",
                                                     "quality"))
    series = influx.query(f"SELECT count(*) FROM {measurements} WHERE \"device\" = "
                          f"{_quote(device)} AND time > '{_rfc3339(since)}'")
    total = 0
    for item in series:
        for row in item.values:
            total += max((int(v) for v in row[1:] if isinstance(v, int | float)), default=0)
    return total


def _gateway_online_since(influx: InfluxClient, gateway: str, since: datetime) -> bool:
    series = influx.query(f'SELECT last("online") FROM "{STATUS_MEASUREMENT}" WHERE '
                          f"\"gateway\" = {_quote(gateway)} AND time > '{_rfc3339(since)}'")
    return any(row[1] is True for item in series for row in item.values)


def _last_valve(influx: InfluxClient, device: str, since: datetime) -> str | None:
    series = influx.query(f'SELECT last("valve") FROM "meter" WHERE "device" = '
                          f"{_quote(device)} AND time > '{_rfc3339(since)}'")
    for item in series:
        for row in item.values:
            return str(row[1]) if row[1] is not None else None
    return None


# ---------------------------------------------------------------- per ticket type


def _alert_of(db_session: Session, ticket: Ticket) -> AlertRecord | None:
    if ticket.alert_key is None:
        return None
    return db_session.scalar(select(AlertRecord).where(AlertRecord.key == ticket.alert_key))


def _leak_baseline(influx: InfluxClient, ticket: Ticket, alert: AlertRecord | None,
                   settings: ApiSettings) -> float | None:
    if alert is not None:
        for key in BASELINE_EVIDENCE_KEYS:
            value = alert.evidence.get(key)
            if isinstance(value, int | float) and math.isfinite(value):
                return float(value)
    if ticket.dma_id is None:
        return None
    before = alert.started_at if alert is not None else ticket.created_at
    start = before - timedelta(days=settings.verify_baseline_nights + 1)
    samples = dma_inflow_buckets(influx, ticket.dma_id, start, before)
    offset = settings.utc_offset_hours
    minima = [night_minimum(samples, night, offset)
              for night in nights_after(start, before, offset)]
    known = sorted(m for m in minima if m is not None)
    return known[len(known) // 2] if known else None


def _judge_leak_ticket(db_session: Session, influx: InfluxClient, ticket: Ticket,
                       resolved_at: datetime, now: datetime,
                       settings: ApiSettings) -> Judgement:
    alert = _alert_of(db_session, ticket)
    if ticket.dma_id is None or db_session.get(Dma, ticket.dma_id) is None:
        return Judgement(Result.PENDING, "no DMA on the ticket: verify by hand", {})
    baseline = _leak_baseline(influx, ticket, alert, settings)
    if baseline is None:
        return Judgement(Result.PENDING, "no night-flow baseline for the DMA", {})
    offset = settings.utc_offset_hours
    nights = nights_after(resolved_at, now, offset)
    if not nights:
        return Judgement(Result.PENDING, "no complete night since the repair",
                         {"baseline_m3h": baseline})
    start, _ = night_window(nights[0], offset)
    _, end = night_window(nights[-1], offset)
    samples = dma_inflow_buckets(influx, ticket.dma_id, start, end)
    minima = [(night, night_minimum(samples, night, offset)) for night in nights]
    return judge_leak(minima, baseline, settings)


def _meter_device(db_session: Session, ticket: Ticket) -> str | None:
    if ticket.device_id:
        return ticket.device_id
    if ticket.household_id and db_session.get(Household, ticket.household_id) is not None:
        device = db_session.scalar(select(Device).where(
            Device.household_id == ticket.household_id))
        return device.id if device is not None else None
    return None


def judge_ticket(*, db_session: Session, influx: InfluxClient, ticket: Ticket,
                 settings: ApiSettings, now: datetime) -> Judgement:
    """How the telemetry judges one resolved ticket."""
    resolved_at = ticket.resolved_at or ticket.updated_at
    hours_since = (now - resolved_at).total_seconds() / 3600
    if ticket.type is TicketType.LEAK:
        return _judge_leak_ticket(db_session, influx, ticket, resolved_at, now, settings)
    if ticket.type is TicketType.VALVE:
        device = _meter_device(db_session, ticket)
        if device is None:
            return Judgement(Result.PENDING, "no meter on the ticket: verify by hand", {})
        return judge_valve(_last_valve(influx, device, resolved_at), hours_since, settings)
    if ticket.type is TicketType.OFFLINE_DEVICE:
        device = _meter_device(db_session, ticket)
        if device is None:
            return Judgement(Result.PENDING, "no device on the ticket: verify by hand", {})
        if db_session.get(Gateway, device) is not None:
            online = _gateway_online_since(influx, device, resolved_at)
            return judge_device(0, online, hours_since, settings)
        return judge_device(_count_readings(influx, device, resolved_at), False, hours_since,
                            settings)
    return judge_by_alert(_alert_of(db_session, ticket), resolved_at)


def verify_resolved(*, db_session: Session, influx: InfluxClient, settings: ApiSettings,
                    now: datetime | None = None) -> list[Outcome]:
    """Judge every resolved ticket; verify or reopen those the telemetry has decided.

    Called by ``POST /api/v1/tickets/verify``, ``python -m api verify`` or a periodic job.
    A ticket whose telemetry cannot be read stays resolved (logged) and is tried next time.
    """
    moment = now or utcnow()
    outcomes = []
    tickets = db_session.scalars(select(Ticket).where(
        Ticket.status == TicketStatus.RESOLVED).order_by(Ticket.id)).all()
    for ticket in tickets:
        try:
            judgement = judge_ticket(db_session=db_session, influx=influx, ticket=ticket,
                                     settings=settings, now=moment)
        except InfluxError as exc:
            log.warning("ticket %s: telemetry unavailable: %s", ticket.id, exc)
            outcomes.append(Outcome(ticket.id, Result.PENDING, f"telemetry unavailable: {exc}"))
            continue
        _apply(db_session, ticket, judgement, moment)
        outcomes.append(Outcome(ticket.id, judgement.result, judgement.detail))
    return outcomes


def _apply(db_session: Session, ticket: Ticket, judgement: Judgement, now: datetime) -> None:
    ticket.verification = {"result": judgement.result.value, "detail": judgement.detail,
                           "checked_at": now.isoformat(), **judgement.figures}
    if judgement.result is Result.PENDING:
        db_session.commit()
        return
    target = TicketStatus.VERIFIED if judgement.result is Result.VERIFIED \
        else TicketStatus.REOPENED
    service.transition(db_session=db_session, ticket=ticket, actor=SYSTEM, system=True,
                       now=now, move_in=TicketTransition(
                           to=target, reason=f"telemetry: {judgement.detail}"))
