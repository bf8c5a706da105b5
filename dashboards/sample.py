"""Simulator data for the board tests and previews, with the real analysis output.

The telemetry is the county simulator's, turned into line protocol exactly as the collector
writes it (``common.schema.reading_line`` / ``event_point``); nothing is published. The
analysis points are the analysis layer's own: :func:`analysis.pipeline.analyse` runs on the
same readings (the long format, as ``analysis.source`` would read them back) in a pass
every ``pass_every`` from the second simulated day (the worker runs one every 15 minutes),
the last one at the end. :class:`analysis.tracker.AlertTracker` turns each pass's findings
into alert changes and :mod:`analysis.sink`'s point builders make the ``alert``,
``dma_kpi`` and ``supply_outlook`` lines the worker writes. The alert changes of every pass
are kept (:attr:`Sample.passes`) so :mod:`dashboards.ticketdb` can replay them through the
ticket service.

Besides the simulator's default incident mix, the sample scripts a DMA leak that starts
after two days of clean nights (so the night-flow baseline exists and the leak is found)
and a few device problems still present at the end, so current-state panels show them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

import pandas as pd

from analysis.params import AnalysisParams
from analysis.pipeline import analyse
from analysis.readings import COLUMNS, VALVE_CODES
from analysis.sink import alert_line, kpi_points, supply_points
from analysis.tracker import AlertTracker, Change
from common.contract import EventMessage, Reading, TelemetryMessage
from common.influx import InfluxClient
from common.register import County
from common.schema import FIELDS, event_point, reading_line
from simulator.county import build_county
from simulator.engine import CountySimulation
from simulator.incidents import Incident, default_scenario
from simulator.messages import MessageBuilder, message_stream

SEED: Final = 20260701
#: the scripted DMA leak, as a share of the DMA's mean inflow (a clear night-flow step)
LEAK_SHARE: Final = 0.5
#: local hour of the first analysis pass of a day; the others follow every ``pass_every``
FIRST_PASS_LOCAL_HOUR: Final = 3
#: one value in the analysis long format: time, device, kind, field, value
LongRow = tuple[datetime, str, str, str, float]


@dataclass(frozen=True)
class AnalysisPass:
    """One replayed worker pass: its time and the alert changes it made."""

    now: datetime
    changes: list[Change]


@dataclass
class Sample:
    """A simulated county's telemetry and the analysis's output for it, as line protocol.

    ``telemetry`` and ``results`` (``dma_kpi``, ``supply_outlook``) are millisecond lines,
    ``alerts`` nanosecond lines (the sink stamps alert changes in ns).
    """

    county: County
    start: datetime
    end: datetime
    incidents: list[Incident]
    telemetry: list[str] = field(default_factory=list)
    results: list[str] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)
    passes: list[AnalysisPass] = field(default_factory=list)

    def load(self, client: InfluxClient, batch: int = 5000) -> None:
        """Write everything into ``client``'s database."""
        for lines, precision in ((self.telemetry + self.results, "ms"), (self.alerts, "ns")):
            for first in range(0, len(lines), batch):
                client.write_lines(lines[first:first + batch], precision=precision)

    def changes(self) -> Iterator[tuple[datetime, Change]]:
        """Every alert change in pass order, with its pass time."""
        for analysis_pass in self.passes:
            for change in analysis_pass.changes:
                yield analysis_pass.now, change


def scripted_incidents(county: County, start: datetime, end: datetime) -> list[Incident]:
    """A DMA leak after two clean days, and problems still present at the end."""
    span = end - start
    monitored = [h for h in county.households if h.monitored] or county.households
    households = county.households
    leaking = county.dmas[-1].branches[0]
    return [
        Incident(kind="background_leak", target=leaking.id, start=start + span * 0.6,
                 magnitude=LEAK_SHARE, relative=True),
        Incident(kind="zero_balance", target=monitored[-1].id, start=start + span * 0.85),
        Incident(kind="meter_offline", target=households[len(households) // 2].id,
                 start=start + span * 0.8),
        Incident(kind="tamper", target=households[-2].id, start=start + span * 0.9),
    ]


def build_sample(*, seed: int = SEED, villages: int = 3, households_per_village: int = 25,
                 days: float = 4.0, end: datetime | None = None,
                 pass_every: timedelta = timedelta(hours=6),
                 params: AnalysisParams | None = None) -> Sample:
    """Simulate ``days`` ending at ``end`` (default: now, on a 5-minute step) and analyse."""
    if end is None:
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        end = now - timedelta(minutes=now.minute % 5)
    start = end - timedelta(days=days)
    county = build_county(seed, villages, households_per_village)
    incidents = default_scenario(county, start, days, seed) + scripted_incidents(
        county, start, end)
    simulation = CountySimulation(county, incidents, start, seed)
    sample = Sample(county, start, end, incidents)
    rows: list[LongRow] = []
    for message in message_stream(simulation, MessageBuilder(county, seed), end):
        document = json.loads(message.payload)
        if "readings" in document:
            telemetry = TelemetryMessage.model_validate(document)
            for reading in telemetry.readings:
                sample.telemetry.append(reading_line(reading, telemetry.gateway))
                rows.extend(long_rows(reading))
        else:
            events = EventMessage.model_validate(document)
            sample.telemetry.extend(event_point(e, events.gateway).to_line()
                                    for e in events.events)
    readings = pd.DataFrame(rows, columns=list(COLUMNS))
    readings["time"] = pd.to_datetime(readings["time"], utc=True)
    run_passes(sample, readings, pass_times(county, start, end, pass_every),
               params or AnalysisParams())
    return sample


def long_rows(reading: Reading) -> list[LongRow]:
    """One reading in the analysis long format (``analysis.readings``): a row per field."""
    values = reading.__dict__
    rows: list[LongRow] = []
    for name in FIELDS[reading.kind]:
        value = values.get(name)
        if value is None or name == "clock_offset_s":
            continue
        number = VALVE_CODES[value] if name == "valve" else float(value)
        rows.append((reading.time, reading.device, reading.kind, name, number))
    return rows


def pass_times(county: County, start: datetime, end: datetime,
               every: timedelta) -> list[datetime]:
    """Pass times from the second day, on the local hours ``FIRST_PASS_LOCAL_HOUR`` + k *
    ``every``, and one at ``end`` (the worker's latest pass)."""
    offset = timedelta(hours=county.utc_offset_hours)
    local_day = (start + offset).replace(hour=0, minute=0, second=0, microsecond=0)
    moment = local_day - offset + timedelta(hours=FIRST_PASS_LOCAL_HOUR)
    times = []
    while moment < end:
        if moment >= start + timedelta(days=1):
            times.append(moment)
        moment += every
    return [*times, end]


def run_passes(sample: Sample, readings: pd.DataFrame, times: list[datetime],
               params: AnalysisParams) -> None:
    """The worker's passes over ``readings``: alert changes from the tracker, ``alert``
    points for them, ``supply_outlook`` points per pass and the last pass's ``dma_kpi``
    (every pass rewrites all complete days in its lookback on the same series and time)."""
    if not times:
        raise ValueError("no pass times")
    tracker = AlertTracker(":memory:", targets=())
    try:
        for now in times:
            analysis = analyse(readings, sample.county, params, now)
            changes = tracker.apply(analysis)
            sample.passes.append(AnalysisPass(now, changes))
            sample.alerts.extend(alert_line(change.alert) for change in changes)
            sample.results.extend(point.to_line() for point in
                                  supply_points(analysis.supply, sample.county, now))
        sample.results.extend(point.to_line() for point in
                              kpi_points(analysis.dma_days, sample.county.utc_offset_hours))
    finally:
        tracker.close()
