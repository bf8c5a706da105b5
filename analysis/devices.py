"""Device faults: silent devices and gateways, meter status, reverse flow, pump drive health.

Pure functions on pandas objects; the long readings format is ``analysis.readings``. Times
are UTC; intervals in minutes, windows in hours as the names say; flows m3/h, currents A.

- **DEVICE_SILENT** (subject: household id for a meter, else the device id): no reading for
  more than ``silent_intervals`` of the device's reporting interval (the median spacing of
  its readings, else ``report_interval_min`` of its kind). Only kinds present in the data are
  judged, so an export of one kind does not make every other device "silent".
- **GATEWAY_SILENT** (subject: gateway id): ``gateway_silent_share`` of a village's devices
  silent at once; then its devices get no DEVICE_SILENT of their own.
- **LOW_BATTERY**, **TAMPER** (household): the meter's last status says so.
- **VALVE_CLOSED** (household): the last valve state is closed (or fault) and the balance
  is at or below zero, or the household is on the monitoring list (never to be cut off):
  HIGH for a monitored household, CRITICAL once closed ``monitored_critical_after_h``.
- **REVERSE_FLOW** (household or inflow meter): ``reverse_min_steps`` backward steps of the
  cumulative volume within ``reverse_window_h``, as ``leaks.continuous_volumes`` classifies
  them (not re-derived here).
- **PUMP_FAULT**, **PUMP_DRY_RUN**, **PUMP_OVERCURRENT** (well): the last
  ``pump_fault_readings`` readings show a fault code; or, while running, flow below
  ``dry_run_flow_share`` of the rated flow and current below ``dry_run_current_share`` of
  normal; or current above ``overcurrent_share`` of normal (normal: the median current of
  readings at >= 80% of rated flow). **PUMP_CYCLING**: more than ``max_starts_per_hour``
  starts per hour over ``cycling_window_h``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from analysis.findings import Finding
from analysis.params import DeviceParams
from common.alerts import AlertKind, Evidence, Place, SeriesWindow, Severity
from common.register import County, Household, Well

KINDS = (AlertKind.DEVICE_SILENT, AlertKind.GATEWAY_SILENT, AlertKind.LOW_BATTERY,
         AlertKind.VALVE_CLOSED, AlertKind.TAMPER, AlertKind.REVERSE_FLOW,
         AlertKind.PUMP_DRY_RUN, AlertKind.PUMP_OVERCURRENT, AlertKind.PUMP_CYCLING,
         AlertKind.PUMP_FAULT)
Judged = dict[AlertKind, set[str]]


@dataclass(frozen=True)
class Device:
    """A register device as the device checks see it."""

    id: str
    kind: str  # measurement: meter, pump, dma_inflow, tank, quality
    subject: str  # household id for a meter, else the device id
    village: str
    place: Place


def inventory(register: County) -> list[Device]:
    """Every device the register expects to report."""
    township = {v.id: v.township for v in register.villages}
    dma_of = {d.village: d.id for d in register.dmas}
    devices = [Device(h.meter, "meter", h.id, h.village, _household_place(h, township))
               for h in register.households]

    def place(village: str, device: str) -> Place:
        return Place(township=township.get(village), village=village, scheme=village,
                     dma=dma_of.get(village), device=device)

    devices += [Device(w.id, "pump", w.id, w.village, place(w.village, w.id))
                for w in register.wells]
    devices += [Device(t.id, "tank", t.id, t.village, place(t.village, t.id))
                for t in register.tanks]
    devices += [Device(d.inflow_meter, "dma_inflow", d.inflow_meter, d.village,
                       place(d.village, d.inflow_meter)) for d in register.dmas]
    devices += [Device(a.id, "quality", a.id, a.village, place(a.village, a.id))
                for a in register.analysers]
    return devices


def _household_place(household: Household, township: dict[str, str]) -> Place:
    return Place(township=township.get(household.village), village=household.village,
                 scheme=household.village, dma=household.dma, branch=household.branch,
                 device=household.meter, household=household.id,
                 monitored=household.monitored)


def _utc(moment: pd.Timestamp) -> datetime:
    return pd.Timestamp(moment).floor("s").to_pydatetime()


# --------------------------------------------------------------------------- silence


def reporting_intervals(readings: pd.DataFrame) -> pd.Series:
    """Median spacing of each device's reading times over the data's last day, minutes."""
    if readings.empty:
        return pd.Series(dtype=float)
    # Devices silent for longer than a day fall back to their kind's default interval.
    times = _nanoseconds(readings["time"])
    recent = times > times.max() - pd.Timedelta(days=1).value
    labels = _labels(readings["device"])
    # Integer codes and nanoseconds in (device, time) order: on time-sorted readings a
    # stable sort of the codes alone (a radix sort when they fit 16 bits) gives it.
    codes, stamps = labels.codes[recent], times[recent]
    if (stamps[1:] >= stamps[:-1]).all():
        keys = codes.astype(np.uint16) if len(labels.categories) < 2**16 else codes
        order = np.argsort(keys, kind="stable")
    else:
        order = np.lexsort((stamps, codes))
    codes, stamps = codes[order], stamps[order]
    first = np.ones(len(codes), dtype=bool)  # one row per (device, time): fields share it
    first[1:] = (codes[1:] != codes[:-1]) | (stamps[1:] != stamps[:-1])
    codes, stamps = codes[first], stamps[first]
    same = codes[1:] == codes[:-1]
    gaps = pd.Series(np.diff(stamps)[same] / 1e9 / 60)  # Series.dt.total_seconds' arithmetic
    medians = gaps.groupby(codes[1:][same]).median().dropna()
    return pd.Series(medians.to_numpy(), index=labels.categories.take(medians.index.to_numpy()),
                     name="time")


def _labels(column: pd.Series) -> pd.Categorical:
    """Device ids as a categorical with sorted categories (cleaned readings have one)."""
    if isinstance(column.dtype, pd.CategoricalDtype) and \
            column.cat.categories.is_monotonic_increasing:
        return pd.Categorical(column)
    return pd.Categorical(column.astype(str))


def _nanoseconds(times: pd.Series) -> np.ndarray:
    return pd.DatetimeIndex(times).as_unit("ns").asi8


def _last_seen(readings: pd.DataFrame) -> pd.Series:
    """Per device id present: the time of its latest reading (nanoseconds, UTC)."""
    labels = _labels(readings["device"])
    last = np.full(len(labels.categories), np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(last, labels.codes, _nanoseconds(readings["time"]))
    seen = last > np.iinfo(np.int64).min
    return pd.Series(last[seen], index=labels.categories[seen])


def detect_silent(readings: pd.DataFrame, register: County, params: DeviceParams,
                  now: datetime) -> tuple[list[Finding], Judged]:
    """DEVICE_SILENT and GATEWAY_SILENT findings, as of ``now``."""
    stamp = pd.Timestamp(now)
    present_kinds = {str(kind) for kind in readings["kind"].unique()}
    expected = [d for d in _expected(register) if d[1] in present_kinds]
    judged: Judged = {AlertKind.DEVICE_SILENT: set(), AlertKind.GATEWAY_SILENT: set()}
    if not expected:
        return [], judged
    ids = pd.Index([device for device, _, _, _ in expected])
    # One vectorised pass over 60,000 meters: Series lookups per device took seconds.
    default = np.array([params.report_interval_min.get(kind, 60.0)
                        for _, kind, _, _ in expected])
    interval = reporting_intervals(readings).reindex(ids).to_numpy(dtype=float)
    interval = np.where(np.isnan(interval), default, interval)
    interval = np.where(interval > 0, interval, default)
    data_start = _nanoseconds(readings["time"]).min()
    since_ns = _last_seen(readings).reindex(ids).to_numpy(dtype=float)
    since_ns = np.where(np.isnan(since_ns), data_start, since_ns).astype(np.int64)
    silent_for = stamp.value - since_ns
    quiet_mask = silent_for > params.silent_intervals * interval * 60e9
    places = _Places(register)
    silent: dict[str, list[tuple[Device, pd.Timestamp, float]]] = {}
    by_village: dict[str, list[str]] = {}
    for n, (device_id, kind, subject, village) in enumerate(expected):
        by_village.setdefault(village, []).append(subject)
        if quiet_mask[n]:
            device = Device(device_id, kind, subject, village,
                            places.of(kind, subject, device_id, village))
            silent.setdefault(village, []).append(
                (device, pd.Timestamp(int(since_ns[n]), tz="UTC"), float(interval[n])))
    findings: list[Finding] = []
    gateway_of = {v.id: v.gateway for v in register.villages}
    township = {v.id: v.township for v in register.villages}
    for village, members in by_village.items():
        quiet = silent.get(village, [])
        gateway = gateway_of.get(village)
        if gateway is not None:
            judged[AlertKind.GATEWAY_SILENT].add(gateway)
        if gateway is not None and len(members) >= 2 and (
                len(quiet) >= params.gateway_silent_share * len(members)):
            since = max(s for _, s, _ in quiet)
            findings.append(Finding(
                kind=AlertKind.GATEWAY_SILENT, subject=gateway, severity=Severity.HIGH,
                title=f"Gateway {gateway} silent: {len(quiet)} of {len(members)} devices in "
                      f"{village} not heard since {since:%Y-%m-%d %H:%M} UTC",
                place=Place(township=township.get(village), village=village, scheme=village,
                            device=gateway),
                started_at=_utc(since),
                evidence={"silent_devices": len(quiet), "devices": len(members),
                          "silent_hours": round((stamp - since) / pd.Timedelta(hours=1), 2)}))
            continue
        judged[AlertKind.DEVICE_SILENT] |= set(members)
        for device, since, interval_min in quiet:
            findings.append(_silent_finding(device, since, interval_min, stamp))
    return findings, judged


def _expected(register: County) -> list[tuple[str, str, str, str]]:
    """(device id, kind, subject, village) of every device :func:`inventory` lists, in its
    order, without building 60,000 places nobody reads."""
    return ([(h.meter, "meter", h.id, h.village) for h in register.households]
            + [(w.id, "pump", w.id, w.village) for w in register.wells]
            + [(t.id, "tank", t.id, t.village) for t in register.tanks]
            + [(d.inflow_meter, "dma_inflow", d.inflow_meter, d.village)
               for d in register.dmas]
            + [(a.id, "quality", a.id, a.village) for a in register.analysers])


class _Places:
    """The place of a device as :func:`inventory` gives it, built only for the few asked."""

    def __init__(self, register: County) -> None:
        self.register = register
        self.township = {v.id: v.township for v in register.villages}
        self.dma_of = {d.village: d.id for d in register.dmas}
        self._households: dict[str, Household] | None = None

    def of(self, kind: str, subject: str, device: str, village: str) -> Place:
        if kind == "meter":
            if self._households is None:
                self._households = {h.id: h for h in self.register.households}
            return _household_place(self._households[subject], self.township)
        return Place(township=self.township.get(village), village=village, scheme=village,
                     dma=self.dma_of.get(village), device=device)


def _silent_finding(device: Device, since: pd.Timestamp, interval_min: float,
                    now: pd.Timestamp) -> Finding:
    hours = (now - since) / pd.Timedelta(hours=1)
    return Finding(
        kind=AlertKind.DEVICE_SILENT, subject=device.subject,
        severity=Severity.MEDIUM if device.kind in ("pump", "tank", "dma_inflow", "quality")
        else Severity.LOW,
        title=f"{device.kind} {device.id} silent for {hours:.1f} h",
        place=device.place, started_at=_utc(since),
        evidence={"last_reading_at": since.isoformat(), "silent_hours": round(hours, 2),
                  "reporting_interval_min": round(interval_min, 1),
                  "missed_intervals": round(60 * hours / interval_min, 1)},
        window=SeriesWindow(measurement=device.kind, fields=[], tags={"device": device.id},
                            start=_utc(since - pd.Timedelta(hours=6)), end=_utc(now)))


# --------------------------------------------------------------------------- meters


def _fields(readings: pd.DataFrame, kind: str, fields: list[str]) -> pd.DataFrame:
    """Rows of ``kind`` with ``fields`` as columns: device, time, <fields> (time-sorted)."""
    rows = readings[(readings["kind"] == kind) & readings["field"].isin(fields)]
    if rows.empty:
        return pd.DataFrame(columns=["device", "time", *fields])
    table = rows.set_index(["device", "time", "field"])["value"].unstack("field")
    table = table.reindex(columns=fields).reset_index()
    table.columns.name = None
    return table.sort_values(["device", "time"], kind="stable").reset_index(drop=True)


def _run_start(times: pd.Series, flags: pd.Series) -> pd.Timestamp:
    """The first time of the trailing run of True ``flags`` (both in time order)."""
    values = flags.to_numpy(dtype=bool)
    falses = np.flatnonzero(~values)
    first = int(falses[-1]) + 1 if len(falses) else 0
    return pd.Timestamp(times.iloc[first])


def detect_meter_status(readings: pd.DataFrame, register: County, params: DeviceParams,
                        now: datetime) -> tuple[list[Finding], Judged]:
    """LOW_BATTERY, TAMPER and VALVE_CLOSED findings from meter status readings."""
    stamp = pd.Timestamp(now)
    judged: Judged = {AlertKind.LOW_BATTERY: set(), AlertKind.TAMPER: set(),
                      AlertKind.VALVE_CLOSED: set()}
    fields = ["valve", "balance_yuan", "battery_low", "tamper"]
    rows = readings[(readings["kind"] == "meter") & readings["field"].isin(fields)]
    if rows.empty:
        return [], judged
    households = {h.meter: h for h in register.households}
    township = {v.id: v.township for v in register.villages}
    # Readings are time-sorted: the last row per device and field is its latest value.
    latest = rows.drop_duplicates(["device", "field"], keep="last").pivot(
        index="device", columns="field", values="value").reindex(columns=fields)
    flagged = latest[(latest["battery_low"] > 0.5) | (latest["tamper"] > 0.5)
                     | (latest["valve"] > 0.5)]
    table = _fields(rows[rows["device"].isin(flagged.index)], "meter", fields)
    for kind, column in ((AlertKind.LOW_BATTERY, "battery_low"), (AlertKind.TAMPER, "tamper"),
                         (AlertKind.VALVE_CLOSED, "valve")):
        judged[kind] = {households[m].id for m in latest.index[latest[column].notna()]
                        if m in households}
    findings: list[Finding] = []
    for meter, status in flagged.iterrows():
        household = households.get(str(meter))
        if household is None:
            continue
        history = table[table["device"] == meter]
        place = _household_place(household, township)
        if status["battery_low"] > 0.5:
            findings.append(_status_finding(AlertKind.LOW_BATTERY, household, place, history,
                                            "battery_low", stamp))
        if status["tamper"] > 0.5:
            findings.append(_status_finding(AlertKind.TAMPER, household, place, history,
                                            "tamper", stamp))
        balance = float(status["balance_yuan"])
        if status["valve"] > 0.5 and (balance <= 0 or household.monitored):
            findings.append(_valve_finding(household, place, history, status, stamp, params))
    return findings, judged


def _status_finding(kind: AlertKind, household: Household, place: Place,
                    history: pd.DataFrame, column: str, now: pd.Timestamp) -> Finding:
    rows = history.dropna(subset=[column])
    since = _run_start(rows["time"], rows[column] > 0.5)
    what = "low battery" if kind == AlertKind.LOW_BATTERY else "tamper alarm"
    severity = Severity.MEDIUM if household.monitored or kind == AlertKind.TAMPER \
        else Severity.LOW
    return Finding(
        kind=kind, subject=household.id, severity=severity,
        title=f"Household {household.id}: meter reports {what}",
        place=place, started_at=_utc(since),
        evidence={"since": since.isoformat(), "monitored": household.monitored},
        window=SeriesWindow(measurement="meter", fields=[column, "valve"],
                            tags={"device": household.meter},
                            start=_utc(since - pd.Timedelta(hours=6)), end=_utc(now)))


def _valve_finding(household: Household, place: Place, history: pd.DataFrame,
                   status: pd.Series, now: pd.Timestamp, params: DeviceParams) -> Finding:
    rows = history.dropna(subset=["valve"])
    since = _run_start(rows["time"], rows["valve"] > 0.5)
    hours = (now - since) / pd.Timedelta(hours=1)
    balance = float(status["balance_yuan"])
    causes = [name for name, hit in (
        ("zero_balance", balance <= 0), ("tamper", status["tamper"] > 0.5),
        ("low_battery", status["battery_low"] > 0.5), ("valve_fault", status["valve"] > 1.5))
        if hit]
    if household.monitored:
        severity = (Severity.CRITICAL if hours >= params.monitored_critical_after_h
                    else Severity.HIGH)
    else:
        severity = Severity.LOW
    evidence: Evidence = {"balance_yuan": round(balance, 2), "closed_hours": round(hours, 2),
                          "cause": ",".join(causes) or "unknown",
                          "monitored": household.monitored}
    who = "monitored household" if household.monitored else "household"
    return Finding(
        kind=AlertKind.VALVE_CLOSED, subject=household.id, severity=severity,
        title=f"Valve closed at {who} {household.id} ({evidence['cause']}, "
              f"balance {balance:.2f} yuan)",
        place=place, started_at=_utc(since), evidence=evidence,
        window=SeriesWindow(measurement="meter", fields=["valve", "balance_yuan"],
                            tags={"device": household.meter},
                            start=_utc(since - pd.Timedelta(hours=6)), end=_utc(now)))


def detect_reverse_flow(anomalies: pd.DataFrame, volumes: pd.DataFrame, register: County,
                        params: DeviceParams, now: datetime) -> tuple[list[Finding], Judged]:
    """REVERSE_FLOW from the anomalies ``leaks.continuous_volumes`` found.

    Parameters
    ----------
    anomalies
        Columns time, device, anomaly, change_m3 (``leaks.continuous_volumes``).
    volumes
        The cumulative volume rows judged (columns time, device, value): which devices
        could show reverse flow at all.
    """
    stamp = pd.Timestamp(now)
    households = {h.meter: h for h in register.households}
    inflows = {d.inflow_meter: d for d in register.dmas}
    township = {v.id: v.township for v in register.villages}
    subjects = {**{m: h.id for m, h in households.items()}, **{m: m for m in inflows}}
    judged: Judged = {AlertKind.REVERSE_FLOW: {subjects[d] for d in volumes["device"].unique()
                                               if d in subjects}}
    if anomalies.empty:
        return [], judged
    start = stamp - pd.Timedelta(hours=params.reverse_window_h)
    reverse = anomalies[(anomalies["anomaly"] == "reverse") & (anomalies["time"] > start)
                        & (anomalies["time"] <= stamp)]
    findings: list[Finding] = []
    for device, steps in reverse.groupby("device"):
        if len(steps) < params.reverse_min_steps or device not in subjects:
            continue
        if device in households:
            place = _household_place(households[str(device)], township)
        else:
            dma = inflows[str(device)]
            place = Place(township=township.get(dma.village), village=dma.village,
                          scheme=dma.village, dma=dma.id, device=str(device))
        volume = float(-steps["change_m3"].sum())
        findings.append(Finding(
            kind=AlertKind.REVERSE_FLOW, subject=subjects[str(device)], severity=Severity.MEDIUM,
            title=f"{device}: cumulative volume ran backwards {len(steps)} times "
                  f"({volume:.3f} m3) in {params.reverse_window_h:g} h",
            place=place, started_at=_utc(steps["time"].min()),
            evidence={"backward_steps": len(steps), "backward_m3": round(volume, 4)},
            window=SeriesWindow(measurement="meter" if device in households else "dma_inflow",
                                fields=["volume_m3"], tags={"device": str(device)},
                                start=_utc(start), end=_utc(stamp))))
    return findings, judged


# --------------------------------------------------------------------------- pumps


def detect_pumps(readings: pd.DataFrame, register: County, params: DeviceParams,
                 now: datetime) -> tuple[list[Finding], Judged]:
    """PUMP_FAULT, PUMP_DRY_RUN, PUMP_OVERCURRENT and PUMP_CYCLING per well drive."""
    stamp = pd.Timestamp(now)
    pump_kinds = (AlertKind.PUMP_FAULT, AlertKind.PUMP_DRY_RUN, AlertKind.PUMP_OVERCURRENT,
                  AlertKind.PUMP_CYCLING)
    judged: Judged = {kind: set() for kind in pump_kinds}
    table = _fields(readings, "pump", ["running", "current_a", "flow_m3h", "fault_code",
                                       "frequency_hz"])
    if table.empty:
        return [], judged
    wells = {w.id: w for w in register.wells}
    township = {v.id: v.township for v in register.villages}
    dma_of = {d.village: d.id for d in register.dmas}
    findings: list[Finding] = []
    for device, rows in table.groupby("device", sort=False):
        well = wells.get(str(device))
        if well is None:
            continue
        for kind in pump_kinds:
            judged[kind].add(well.id)
        place = Place(township=township.get(well.village), village=well.village,
                      scheme=well.village, dma=dma_of.get(well.village), device=well.id)
        findings.extend(_pump_findings(well, rows, place, stamp, params))
    return findings, judged


def _running(rows: pd.DataFrame) -> pd.Series:
    derived = (rows["flow_m3h"].fillna(0) > 0) | (rows["frequency_hz"].fillna(0) > 0)
    return rows["running"].fillna(derived.astype(float)) > 0.5


def _pump_findings(well: Well, rows: pd.DataFrame, place: Place, now: pd.Timestamp,
                   params: DeviceParams) -> list[Finding]:
    found: list[Finding] = []
    count = params.pump_fault_readings
    running = _running(rows)
    window = SeriesWindow(measurement="pump", fields=["running", "current_a", "flow_m3h",
                                                      "fault_code"],
                          tags={"device": well.id},
                          start=_utc(now - pd.Timedelta(hours=12)), end=_utc(now))

    def finding(kind: AlertKind, severity: Severity, title: str, flags: pd.Series,
                evidence: Evidence) -> Finding:
        return Finding(kind=kind, subject=well.id, severity=severity, title=title,
                       place=place, started_at=_utc(_run_start(rows["time"], flags)),
                       evidence=evidence, window=window)

    fault = rows["fault_code"].fillna(0) != 0
    if len(rows) >= count and bool(fault.iloc[-count:].all()):
        code = int(rows["fault_code"].iloc[-1])
        found.append(finding(AlertKind.PUMP_FAULT, Severity.HIGH,
                             f"Pump {well.id}: drive fault code {code}", fault,
                             {"fault_code": code}))
    loaded = running & (rows["flow_m3h"] >= 0.8 * well.rated_flow_m3h)
    normal = float(rows.loc[loaded, "current_a"].median()) if loaded.any() else np.nan
    if np.isfinite(normal) and normal > 0:
        current, flow = rows["current_a"], rows["flow_m3h"]
        dry = running & (flow < params.dry_run_flow_share * well.rated_flow_m3h) & (
            current < params.dry_run_current_share * normal)
        over = running & (current > params.overcurrent_share * normal)
        evidence: Evidence = {"normal_current_a": round(normal, 2),
                              "current_a": _last(current), "flow_m3h": _last(flow),
                              "rated_flow_m3h": well.rated_flow_m3h}
        if len(rows) >= count and bool(dry.iloc[-count:].all()):
            found.append(finding(AlertKind.PUMP_DRY_RUN, Severity.HIGH,
                                 f"Pump {well.id} running dry: flow and current down together",
                                 dry, evidence))
        if len(rows) >= count and bool(over.iloc[-count:].all()):
            found.append(finding(AlertKind.PUMP_OVERCURRENT, Severity.HIGH,
                                 f"Pump {well.id}: current {_last(current)} A, normal "
                                 f"{normal:.1f} A", over, evidence))
    recent = rows["time"] > now - pd.Timedelta(hours=params.cycling_window_h)
    starts = (running & ~running.shift(1, fill_value=True))[recent]
    per_hour = float(starts.sum()) / params.cycling_window_h
    if per_hour > params.max_starts_per_hour:
        found.append(Finding(
            kind=AlertKind.PUMP_CYCLING, subject=well.id, severity=Severity.MEDIUM,
            title=f"Pump {well.id} cycling: {per_hour:.1f} starts per hour",
            place=place, started_at=_utc(rows.loc[starts[starts].index, "time"].min()),
            evidence={"starts_per_hour": round(per_hour, 2),
                      "window_h": params.cycling_window_h}, window=window))
    return found


def _last(values: pd.Series) -> float | None:
    known = values.dropna()
    return round(float(known.iloc[-1]), 3) if len(known) else None


# --------------------------------------------------------------------------- all of them


def detect_devices(readings: pd.DataFrame, register: County, params: DeviceParams,
                   now: datetime, anomalies: pd.DataFrame | None = None,
                   volumes: pd.DataFrame | None = None) -> tuple[list[Finding], Judged]:
    """Every device check, as of ``now``; ``anomalies`` and ``volumes`` as in
    :func:`detect_reverse_flow` (reverse flow is judged only when given)."""
    findings: list[Finding] = []
    judged: Judged = {}
    # Each check selects the few fields it reads itself (copying every meter row for
    # them cost seconds at county scale).
    checks = [detect_silent(readings, register, params, now),
              detect_meter_status(readings, register, params, now),
              detect_pumps(readings, register, params, now)]
    if anomalies is not None and volumes is not None:
        checks.append(detect_reverse_flow(anomalies, volumes, register, params, now))
    for found, subjects in checks:
        findings.extend(found)
        for kind, names in subjects.items():
            judged.setdefault(kind, set()).update(names)
    return findings, judged
