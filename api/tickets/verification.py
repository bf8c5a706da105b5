"""Verification from telemetry: is a resolved ticket's problem really gone?

- leak tickets: the DMA's minimum night flow (02:00-04:00 local) must be back to its
  baseline for N complete nights after the repair; one failing night reopens the ticket.
  The baseline is a ``night_baseline_m3h`` in the evidence of the ticket's alerts, else the
  median night minimum of the nights before its leak alerts began; a DMA with no such
  nights is judged like a leak survey;
- leak surveys (chronic losses, ``water_balance`` alerts): the DMA's real losses (NRW less
  apparent losses, from the analysis' daily ``dma_kpi`` points) over the N complete local
  days after the repair must be under the loss grade (CJJ 92: 12% of inflow);
- valve tickets: the meter reports its valve open after the repair;
- offline-device tickets: readings (or a gateway's online status) arrive after the repair;
- other tickets: every alert of the ticket resolved; fresh evidence after the repair on an
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
from common.alerts import AlertKind, AlertStatus
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


@dataclass(frozen=True, slots=True)
class LossDay:
    """One local day of a DMA's water balance (the analysis' ``dma_kpi`` point), m3."""

    day: date
    inflow_m3: float
    consumption_m3: float
    nrw_m3: float


def judge_losses(days: Sequence[LossDay], settings: ApiSettings) -> Judgement:
    """Verified when the real losses over the first ``verify_survey_days`` complete days
    after the repair are at most ``verify_loss_grade_share`` of the inflow; reopen above it.

    Real losses = NRW - apparent losses (``verify_apparent_loss_share`` x consumption), as
    the analysis' water-balance alert counts them. Days without inflow are skipped.
    """
    wanted = settings.verify_survey_days
    known = [day for day in days if day.inflow_m3 > 0][:wanted]
    figures: dict[str, Any] = {
        "loss_grade_share": settings.verify_loss_grade_share,
        "days": {day.day.isoformat(): round(day.nrw_m3 / day.inflow_m3, 4) for day in known}}
    if len(known) < wanted:
        return Judgement(Result.PENDING, f"{len(known)} of {wanted} days of water balance "
                         "since the repair", figures)
    inflow = sum(day.inflow_m3 for day in known)
    real = sum(day.nrw_m3 - settings.verify_apparent_loss_share * day.consumption_m3
               for day in known)
    share = real / inflow
    figures["real_loss_share"] = round(share, 4)
    grade = settings.verify_loss_grade_share
    verdict = f"real losses {share:.1%} of inflow over {wanted} days after the repair"
    if share <= grade:
        return Judgement(Result.VERIFIED, f"{verdict} (grade {grade:.0%})", figures)
    return Judgement(Result.REOPEN, f"{verdict}, above the grade {grade:.0%}", figures)


def judge_by_alerts(alerts: Sequence[AlertRecord], resolved_at: datetime) -> Judgement:
    """Verified when every alert of the ticket resolved; reopen on fresh evidence after the
    repair on an alert still open."""
    if not alerts:
        return Judgement(Result.PENDING, "no alert or telemetry rule: verify by hand", {})
    figures = {"alerts": {alert.key: alert.status.value for alert in alerts}}
    still_open = [alert for alert in alerts if alert.status is AlertStatus.OPEN]
    if not still_open:
        return Judgement(Result.VERIFIED, "the alerts resolved", figures)
    fresh = [alert.key for alert in still_open if alert.updated_at > resolved_at]
    if fresh:
        return Judgement(Result.REOPEN, f"fresh evidence after the repair: {', '.join(fresh)}",
                         figures)
    return Judgement(Result.PENDING, f"still open: {', '.join(a.key for a in still_open)}",
                     figures)


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


def dma_loss_days(influx: InfluxClient, dma: str, start: datetime,
                  end: datetime, utc_offset_hours: float) -> list[LossDay]:
    """The DMA's daily water balance (``dma_kpi``, stamped at local midnight) in [start, end)."""
    series = influx.query(
        'SELECT "inflow_m3", "consumption_m3", "nrw_m3" FROM "dma_kpi" WHERE "dma" = '
        f"{_quote(dma)} AND time >= '{_rfc3339(start)}' AND time < '{_rfc3339(end)}'")
    offset = timedelta(hours=utc_offset_hours)
    days = []
    for item in series:
        for moment_ms, inflow, consumption, nrw in item.values:
            if None in (inflow, consumption, nrw):
                continue
            days.append(LossDay((_ms_to_datetime(moment_ms) + offset).date(), float(inflow),
                                float(consumption), float(nrw)))
    return sorted(days, key=lambda day: day.day)


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


def _alerts_of(db_session: Session, ticket: Ticket) -> list[AlertRecord]:
    """Every alert that joined the ticket (its lead alert first)."""
    keys = ticket.alert_keys or ([ticket.alert_key] if ticket.alert_key else [])
    if not keys:
        return []
    found = db_session.scalars(select(AlertRecord).where(AlertRecord.key.in_(keys))).all()
    return sorted(found, key=lambda alert: (alert.key != ticket.alert_key, alert.id))


#: Alert kinds whose start marks when the leak began (a water-balance alert's start is the
#: start of its KPI window, not of a leak).
_LEAK_ONSET_KINDS = frozenset({AlertKind.NIGHT_FLOW, AlertKind.BURST})


def _leak_baseline(influx: InfluxClient, ticket: Ticket, alerts: Sequence[AlertRecord],
                   settings: ApiSettings) -> float | None:
    for alert in alerts:
        for key in BASELINE_EVIDENCE_KEYS:
            value = alert.evidence.get(key)
            if isinstance(value, int | float) and math.isfinite(value):
                return float(value)
    if ticket.dma_id is None:
        return None
    onsets = [a.started_at for a in alerts if a.kind in _LEAK_ONSET_KINDS] or \
        [a.started_at for a in alerts] or [ticket.created_at]
    before = min(onsets)
    start = before - timedelta(days=settings.verify_baseline_nights + 1)
    samples = dma_inflow_buckets(influx, ticket.dma_id, start, before)
    offset = settings.utc_offset_hours
    minima = [night_minimum(samples, night, offset)
              for night in nights_after(start, before, offset)]
    known = sorted(m for m in minima if m is not None)
    return known[len(known) // 2] if known else None


def _judge_losses(influx: InfluxClient, dma: str, resolved_at: datetime, now: datetime,
                  settings: ApiSettings) -> Judgement:
    """Real losses over the complete local days after the repair (a leak survey)."""
    offset = timedelta(hours=settings.utc_offset_hours)
    first_day = (resolved_at + offset).date() + timedelta(days=1)
    start = datetime.combine(first_day, time(0), tzinfo=UTC) - offset
    last_end = datetime.combine((now + offset).date(), time(0), tzinfo=UTC) - offset
    if last_end <= start:
        return Judgement(Result.PENDING, "no complete day since the repair", {})
    return judge_losses(dma_loss_days(influx, dma, start, last_end, settings.utc_offset_hours),
                        settings)


def _judge_leak_ticket(db_session: Session, influx: InfluxClient, ticket: Ticket,
                       resolved_at: datetime, now: datetime,
                       settings: ApiSettings) -> Judgement:
    if ticket.dma_id is None or db_session.get(Dma, ticket.dma_id) is None:
        return Judgement(Result.PENDING, "no DMA on the ticket: verify by hand", {})
    if ticket.type is TicketType.LEAK_SURVEY:
        return _judge_losses(influx, ticket.dma_id, resolved_at, now, settings)
    baseline = _leak_baseline(influx, ticket, _alerts_of(db_session, ticket), settings)
    if baseline is None:
        judgement = _judge_losses(influx, ticket.dma_id, resolved_at, now, settings)
        return Judgement(judgement.result, "no night-flow baseline for the DMA, judged by "
                         f"its water balance: {judgement.detail}", judgement.figures)
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
    if ticket.type in (TicketType.LEAK, TicketType.LEAK_SURVEY):
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
    return judge_by_alerts(_alerts_of(db_session, ticket), resolved_at)


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
