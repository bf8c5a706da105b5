"""Simulator data for the board tests and previews, with stand-in analysis output.

The telemetry is the county simulator's, turned into line protocol exactly as the collector
writes it (``common.schema.reading_line`` / ``event_point``); nothing is published. The
``dma_kpi``, ``supply_outlook`` and ``alert`` points follow ``common.schema.ANALYSIS_FIELDS``
but are simple stand-ins computed here from the same readings and the incidents' ground
truth (the analysis package computes the real ones): daily water balance per DMA, a trailing
24 h supply outlook per village every 6 h, and one alert per incident, opened an hour after
it starts and closed an hour after it ends.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

import pandas as pd

from common.contract import EventMessage, Reading, TelemetryMessage
from common.influx import InfluxClient, Point
from common.register import County
from common.schema import event_point, reading_line, to_millis
from simulator.county import build_county
from simulator.engine import CountySimulation
from simulator.incidents import Incident, default_scenario
from simulator.messages import MessageBuilder, message_stream

SEED: Final = 20260701
#: incident kind -> (alert kind, severity); valve closures of monitored households are critical
ALERT_OF: Final = {
    "burst": ("burst", "high"), "background_leak": ("night_flow", "medium"),
    "customer_leak": ("customer_leak", "low"), "demand_surge": ("shortage", "high"),
    "chlorinator_failure": ("quality_limit", "critical"),
    "turbidity_event": ("quality_limit", "critical"),
    "meter_offline": ("device_silent", "medium"), "low_battery": ("low_battery", "low"),
    "zero_balance": ("valve_closed", "high"), "tamper": ("tamper", "medium"),
    "pump_fault": ("pump_fault", "high"),
}


@dataclass
class Sample:
    """A simulated county's telemetry and stand-in analysis points, as line protocol."""

    county: County
    start: datetime
    end: datetime
    incidents: list[Incident]
    telemetry: list[str] = field(default_factory=list)
    analysis: list[str] = field(default_factory=list)

    def load(self, client: InfluxClient, batch: int = 5000) -> None:
        lines = self.telemetry + self.analysis
        for first in range(0, len(lines), batch):
            client.write_lines(lines[first:first + batch])


def _ongoing(county: County, start: datetime, end: datetime) -> list[Incident]:
    """Problems still present at the end, so current-state panels have something to show."""
    span = end - start
    monitored = [h for h in county.households if h.monitored] or county.households
    households = county.households
    return [
        Incident(kind="zero_balance", target=monitored[-1].id, start=start + span * 0.85),
        Incident(kind="meter_offline", target=households[len(households) // 2].id,
                 start=start + span * 0.8),
        Incident(kind="tamper", target=households[-2].id, start=start + span * 0.9),
    ]


def build_sample(*, seed: int = SEED, villages: int = 3, households_per_village: int = 25,
                 days: float = 4.0, end: datetime | None = None) -> Sample:
    """Simulate ``days`` ending at ``end`` (default: now, on a 5-minute step)."""
    if end is None:
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        end = now - timedelta(minutes=now.minute % 5)
    start = end - timedelta(days=days)
    county = build_county(seed, villages, households_per_village)
    incidents = default_scenario(county, start, days, seed) + _ongoing(county, start, end)
    simulation = CountySimulation(county, incidents, start, seed)
    sample = Sample(county, start, end, incidents)
    readings: list[Reading] = []
    for message in message_stream(simulation, MessageBuilder(county, seed), end):
        document = json.loads(message.payload)
        if "readings" in document:
            telemetry = TelemetryMessage.model_validate(document)
            readings.extend(telemetry.readings)
            sample.telemetry.extend(reading_line(r, telemetry.gateway)
                                    for r in telemetry.readings)
        else:
            events = EventMessage.model_validate(document)
            sample.telemetry.extend(event_point(e, events.gateway).to_line()
                                    for e in events.events)
    frame = _frame(readings)
    sample.analysis = [point.to_line() for point in (
        *dma_kpi_points(county, frame, start, end), *supply_points(county, frame, start, end),
        *alert_points(county, incidents, end))]
    return sample


def _frame(readings: Iterable[Reading]) -> pd.DataFrame:
    rows = []
    for r in readings:
        values = r.__dict__
        rows.append({"time": r.time, "kind": r.kind, "device": r.device, "village": r.village,
                     "dma": r.dma, "volume_m3": values.get("volume_m3"),
                     "flow_m3h": values.get("flow_m3h"),
                     "well_level_m": values.get("well_level_m"),
                     "level_m": values.get("level_m")})
    frame = pd.DataFrame(rows)
    frame["time"] = pd.to_datetime(frame["time"], utc=True)
    return frame


def _ms(moment: pd.Timestamp | datetime) -> int:
    return to_millis(pd.Timestamp(moment).to_pydatetime())


def dma_kpi_points(county: County, frame: pd.DataFrame, start: datetime,
                   end: datetime) -> list[Point]:
    """Per DMA and complete local day: inflow, consumption, losses, night flow."""
    offset = pd.Timedelta(hours=county.utc_offset_hours)
    local = frame.assign(day=(frame["time"] + offset).dt.floor("D"),
                         hour=(frame["time"] + offset).dt.hour)
    first_day = (pd.Timestamp(start) + offset).ceil("D")
    last_day = (pd.Timestamp(end) + offset).floor("D")
    local = local[(local["day"] >= first_day) & (local["day"] < last_day)]
    inflow = local[local["kind"] == "dma_inflow"]
    meters = local[local["kind"] == "meter"]
    points: list[Point] = []
    for dma in county.dmas:
        dma_inflow = inflow[inflow["dma"] == dma.id].groupby("day")
        used = meters[meters["dma"] == dma.id].groupby(["day", "device"])["volume_m3"]
        consumption = (used.max() - used.min()).groupby("day").sum()
        nights: list[float] = []
        for day, rows in dma_inflow:
            inflow_m3 = float(rows["volume_m3"].max() - rows["volume_m3"].min())
            consumed = float(consumption.get(day, 0.0))
            nrw = inflow_m3 - consumed
            night = rows[(rows["hour"] >= 2) & (rows["hour"] < 4)]["flow_m3h"]
            night_flow = float(night.min()) if len(night) else float(rows["flow_m3h"].min())
            baseline = float(pd.Series(nights).median()) if nights else night_flow
            nights.append(night_flow)
            unavoidable_l_day = (18 * dma.mains_km + 0.8 * dma.connections) * dma.avg_pressure_m
            points.append(Point("dma_kpi", {"dma": dma.id, "village": dma.village}, {
                "inflow_m3": inflow_m3, "consumption_m3": consumed, "nrw_m3": nrw,
                "nrw_pct": 100 * nrw / inflow_m3 if inflow_m3 else 0.0,
                "night_flow_m3h": night_flow, "night_baseline_m3h": baseline,
                "litres_per_connection_day": nrw * 1000 / max(dma.connections, 1),
                "ili": nrw * 1000 / unavoidable_l_day if unavoidable_l_day else 0.0,
            }, _ms(pd.Timestamp(day) - offset)))
    return points


def _plan_level(days_to_shortfall: float, guarantee_pct: float) -> int:
    """Stand-in trigger: I when the tank ran dry, else by days until the source falls short."""
    if guarantee_pct < 90:
        return 1
    for limit, level in ((3, 2), (7, 3), (14, 4)):
        if days_to_shortfall < limit:
            return level
    return 0


def supply_points(county: County, frame: pd.DataFrame, start: datetime,
                  end: datetime) -> list[Point]:
    """Per village every 6 h from the second day: a trailing-24 h supply outlook.

    Days to shortfall: the stored water over the daily deficit when demand exceeds the wells'
    licensed capacity, or the water above the intake over its fall per day when the wells
    are drawing down; 90 means no shortfall within the horizon.
    """
    township_of = {v.id: v.township for v in county.villages}
    step = pd.Timedelta(hours=6)
    margin_history: dict[str, list[float]] = {}
    points: list[Point] = []
    moment = pd.Timestamp(start) + pd.Timedelta(hours=24)
    while moment <= pd.Timestamp(end):
        window = frame[(frame["time"] > moment - pd.Timedelta(hours=24))
                       & (frame["time"] <= moment)]
        for village in county.villages:
            rows = window[window["village"] == village.id]
            used = rows[rows["kind"] == "meter"].groupby("device")["volume_m3"]
            demand = float((used.max() - used.min()).sum())
            wells = [w for w in county.wells if w.village == village.id]
            capacity = sum(w.rated_flow_m3h * w.allowed_hours_per_day for w in wells)
            tank = rows[rows["kind"] == "tank"]
            guarantee = 100 * float((tank["level_m"] > 0.05).mean()) if len(tank) else 100.0
            stored = float(tank["volume_m3"].iloc[-1]) if len(tank) else 0.0
            shortfall = demand - capacity
            days = stored / shortfall if shortfall > 0 else 90.0
            pumps = rows[rows["kind"] == "pump"]
            margins = [w.intake_depth_m - float(pumps[pumps["device"] == w.id]
                                                ["well_level_m"].max()) for w in wells
                       if (pumps["device"] == w.id).any()]
            history = margin_history.setdefault(village.id, [])
            if margins and history:
                # the same window a day earlier (or the oldest), so the daily cycle cancels
                earlier = history[-4] if len(history) >= 4 else history[0]
                steps_back = min(len(history), 4)
                fall_per_day = (earlier - min(margins)) * (pd.Timedelta(days=1) / step) \
                    / steps_back
                if fall_per_day > 0:
                    days = min(days, min(margins) / fall_per_day)
            if margins:
                history.append(min(margins))
            days = min(days, 90.0)
            fields: dict[str, float | int | bool | str] = {
                "demand_m3d": demand, "capacity_m3d": capacity,
                "litres_per_person_day": demand * 1000 / max(village.population, 1),
                "days_to_shortfall": days, "guarantee_rate_pct": guarantee,
                "plan_level": _plan_level(days, guarantee)}
            if margins:
                fields["well_margin_m"] = min(margins)
            points.append(Point("supply_outlook", {"village": village.id,
                                                   "township": township_of[village.id]},
                                fields, _ms(moment)))
        moment += step
    return points


#: alert kind -> (ticket type, SLA class, crew skill) for the sample tickets
TICKET_OF: Final = {
    "burst": ("leak", "major", "pipe"), "night_flow": ("leak", "ordinary", "pipe"),
    "customer_leak": ("leak", "minor", "pipe"), "shortage": ("supply", "major", "pump_electrical"),
    "quality_limit": ("water_quality", "minor", "water_quality"),
    "device_silent": ("offline_device", "ordinary", "meter"),
    "low_battery": ("meter", "ordinary", "meter"), "valve_closed": ("valve", "minor", "meter"),
    "tamper": ("meter", "ordinary", "meter"), "pump_fault": ("pump", "minor", "pump_electrical"),
}
SLA_HOURS: Final = {"minor": 12, "ordinary": 24, "major": 48}


def ticket_rows(county: County, incidents: Iterable[Incident], now: datetime
                ) -> dict[str, list[dict[str, object]]]:
    """Rows for the API's townships, villages, crews and tickets tables: one ticket per
    incident's alert, created when the alert opened, some resolved, some past their deadline.
    Table name -> rows (column -> value), to insert with the API's SQLAlchemy models."""
    crews = [{"id": n, "name": f"Crew {n}", "skills": skills, "zones": [],
              "home_latitude": county.seat_latitude, "home_longitude": county.seat_longitude,
              "active": True}
             for n, skills in ((1, ["pipe"]), (2, ["meter", "water_quality"]),
                               (3, ["pump_electrical", "pipe"]))]
    crew_of_skill = {"pipe": 1, "meter": 2, "water_quality": 2, "pump_electrical": 3}
    tickets: list[dict[str, object]] = []
    for number, incident in enumerate(incidents, start=1):
        kind, _ = ALERT_OF[incident.kind]
        place = _alert_place(county, incident)
        subject = place.get("device") or place.get("dma") or place["village"]
        ticket_type, sla, skill = TICKET_OF[kind]
        created = incident.start + timedelta(hours=1)
        if created >= now:
            continue
        resolved = incident.end + timedelta(hours=2) if incident.end is not None else None
        if resolved is not None and resolved >= now:
            resolved = None
        tickets.append({
            "id": number, "alert_key": f"{kind}:{subject}", "source": "alert",
            "type": ticket_type, "title": f"{kind.replace('_', ' ')} at {subject}",
            "description": "", "priority": "urgent" if sla == "minor" else "normal",
            "required_skill": skill, "sla_class": sla,
            "status": "resolved" if resolved else ("in_progress" if number % 2 else "open"),
            "crew_id": crew_of_skill[skill] if resolved or number % 3 else None,
            "village_id": place["village"], "dma_id": place.get("dma"),
            "device_id": place.get("device"), "created_at": created, "updated_at": created,
            "due_at": created + timedelta(hours=SLA_HOURS[sla]), "resolved_at": resolved,
            "verification": {}})
    return {
        "townships": [{"id": t.id, "name": t.name} for t in county.townships],
        "villages": [{"id": v.id, "name": v.name, "township_id": v.township,
                      "population": v.population, "households": v.households,
                      "monitored_households": v.monitored_households,
                      "latitude": v.latitude, "longitude": v.longitude}
                     for v in county.villages],
        "crews": crews, "tickets": tickets}


def _alert_place(county: County, incident: Incident) -> dict[str, str]:
    households = {h.id: h for h in county.households}
    branches = {b.id: d for d in county.dmas for b in d.branches}
    wells = {w.id: w for w in county.wells}
    analysers = {a.id: a for a in county.analysers}
    target = incident.target
    if target in branches:
        return {"village": branches[target].village, "dma": branches[target].id}
    if target in households:
        home = households[target]
        return {"village": home.village, "dma": home.dma, "device": home.meter}
    if target in wells:
        return {"village": wells[target].village, "device": target}
    if target in analysers:
        return {"village": analysers[target].village, "device": target}
    return {"village": target}


def alert_points(county: County, incidents: Iterable[Incident], end: datetime) -> list[Point]:
    """One alert per incident: open an hour after it starts, closed an hour after it ends."""
    monitored = {h.id for h in county.households if h.monitored}
    points: list[Point] = []
    for incident in incidents:
        kind, severity = ALERT_OF[incident.kind]
        if incident.kind == "zero_balance" and incident.target in monitored:
            severity = "critical"
        place = _alert_place(county, incident)
        subject = place.get("device") or place.get("dma") or place["village"]
        tags = {"kind": kind, "severity": severity, **place}
        key, title = f"{kind}:{subject}", f"{kind.replace('_', ' ')} at {subject}"
        opened = incident.start + timedelta(hours=1)
        if opened < end:
            points.append(Point("alert", tags, {"key": key, "open": True, "title": title},
                                to_millis(opened)))
        if incident.end is not None and incident.end + timedelta(hours=1) < end:
            points.append(Point("alert", tags, {"key": key, "open": False, "title": title},
                                to_millis(incident.end + timedelta(hours=1))))
    return points
