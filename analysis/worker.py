"""The analysis worker: a detection pass every ``interval_s`` against InfluxDB.

One pass (:meth:`Worker.run_pass`): refresh the readings cache from InfluxDB
(``analysis.source``), run ``analysis.pipeline.analyse`` as of now, turn the findings into
alert changes (``analysis.tracker``), write the ``dma_kpi`` and ``supply_outlook`` points,
then drain the outboxes: ``alert`` points to InfluxDB and the changes to the ticket service
(``analysis.sink``).

:meth:`Worker.run_forever` survives outages: a pass that cannot reach InfluxDB is retried
with a growing delay (up to the interval) and changes the ticket service could not take
stay in the outbox, retried with backoff between passes. Nothing is lost across restarts:
alert state and the outbox are in SQLite.

The readings cache is saved (in a background thread) next to the SQLite state, as
``<state_db stem>.readings.npz`` (:func:`snapshot_path`), after the first pass, then after
the first pass ``snapshot_interval_s`` or more (in pass time) after the last save, and when
the worker closes: a full county's snapshot is 0.6 GB, written every hour instead of every
15 minutes. A restarted worker loads it and reads only the hours after it (plus
``reread_h``), not the whole lookback. Older
history is re-read a piece a pass so all of it is re-read every ``reload_h``
(``analysis.source.ReadingCache``).

With ``keep_freed_memory`` (the default) the worker process keeps the memory a pass frees
for the next one (``analysis.memory``).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from analysis.memory import keep_freed_memory
from analysis.params import AnalysisParams, load_params
from analysis.pipeline import analyse
from analysis.sink import ApiSink, Delivery, InfluxAlertSink, write_results
from analysis.source import InfluxSource, ReadingCache
from analysis.tracker import AlertTracker, Target
from common.influx import InfluxClient, InfluxError
from common.register import County
from common.settings import PLACEHOLDER_SECRETS, AnalysisSettings, Settings

log = logging.getLogger(__name__)


class ConfigurationError(ValueError):
    """The worker cannot run with these settings."""


def check_api_token(settings: Settings) -> None:
    """Production must deliver with a real service token, never a placeholder."""
    section = settings.analysis
    if settings.environment != "production" or not section.api_url:
        return
    token = section.api_token
    if token is None or token.get_secret_value().strip().lower() in PLACEHOLDER_SECRETS:
        raise ConfigurationError(
            "production needs a real RURALWATER_ANALYSIS__API_TOKEN "
            "(python -m api create-token NAME --kind analysis)")


def load_register(path: Path) -> County:
    """The asset register file (``register.json``); ConfigurationError when unreadable."""
    try:
        return County.model_validate_json(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"asset register {path}: {exc}") from exc


def snapshot_path(state_db: Path) -> Path:
    """Where the worker keeps its readings snapshot: next to its SQLite state."""
    return state_db.with_name(f"{state_db.stem}.readings.npz")


@dataclass(frozen=True, slots=True)
class PassReport:
    """What one pass did; durations in seconds."""

    now: datetime
    refresh: str
    rows: int
    findings: int
    changes: int
    open_alerts: int
    points: int
    read_s: float
    analyse_s: float
    total_s: float
    api: Delivery | None
    influx: Delivery
    #: pieces of older history the refresh re-read (``ReadingCache``'s rolling re-read)
    reread: int = 0

    def summary(self) -> dict[str, object]:
        return {"now": self.now.isoformat(), "refresh": self.refresh,
                "reread": self.reread, "rows": self.rows,
                "findings": self.findings, "changes": self.changes,
                "open_alerts": self.open_alerts, "kpi_points": self.points,
                "read_s": round(self.read_s, 3), "analyse_s": round(self.analyse_s, 3),
                "total_s": round(self.total_s, 3),
                "api_pending": self.api.pending if self.api else None,
                "api_error": self.api.error if self.api else None}


class Worker:
    """Holds the clients, the readings cache and the alert tracker of one worker process."""

    def __init__(self, section: AnalysisSettings, *, register: County, params: AnalysisParams,
                 influx: InfluxClient, tracker: AlertTracker, api: ApiSink | None) -> None:
        self.section = section
        self.register = register
        self.params = params
        self.influx = influx
        self.tracker = tracker
        self.api = api
        source = InfluxSource(influx, register, detail=timedelta(hours=section.detail_h),
                              max_points=section.query_max_points)
        lookback = max(section.lookback_days, params.lookback_days)
        self.cache = ReadingCache(source, lookback=timedelta(days=lookback),
                                  reread=timedelta(hours=section.reread_h),
                                  reload=timedelta(hours=section.reload_h),
                                  snapshot=snapshot_path(section.state_db))
        self.alert_points = InfluxAlertSink(influx)
        #: pass time of the last snapshot saved, and of the last pass
        self._saved_at: datetime | None = None
        self._passed_at: datetime | None = None
        if section.keep_freed_memory:
            keep_freed_memory()

    @classmethod
    def from_settings(cls, settings: Settings) -> Worker:
        """Build everything the settings name; ConfigurationError when they do not add up."""
        check_api_token(settings)
        section = settings.analysis
        try:
            params = load_params(section.params_file)
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"analysis parameters: {exc}") from exc
        register = load_register(section.register_file)
        api = (ApiSink(section.api_url, section.api_token, timeout_s=section.api_timeout_s)
               if section.api_url else None)
        targets = (Target.API, Target.INFLUX) if api else (Target.INFLUX,)
        return cls(section, register=register, params=params,
                   influx=InfluxClient(settings.influx),
                   tracker=AlertTracker(section.state_db, targets=targets), api=api)

    def close(self) -> None:
        if self._passed_at is not None and self._passed_at != self._saved_at:
            self.cache.save()  # the newest state, so a restart reads only what is newer
        self.cache.wait()  # a snapshot being written is finished, not left half-way
        self.tracker.close()
        self.influx.close()
        if self.api is not None:
            self.api.close()

    def run_pass(self, now: datetime | None = None) -> PassReport:
        """One detection pass as of ``now`` (default: the clock). Raises InfluxError."""
        stamp = now or datetime.now(UTC)
        started = time.perf_counter()
        skew = timedelta(minutes=self.params.max_clock_skew_min)
        readings = self.cache.refresh(stamp + skew)
        read_s = time.perf_counter() - started
        analysis = analyse(readings, self.register, self.params, stamp)
        analyse_s = time.perf_counter() - started - read_s
        changes = self.tracker.apply(analysis)
        api = self.deliver_alerts()  # first: an InfluxDB failure below must not hold it up
        points = write_results(self.influx, analysis, self.register)
        influx = self.alert_points.deliver(self.tracker)
        self._save_snapshot(stamp)
        report = PassReport(
            now=stamp, refresh=self.cache.last_refresh, rows=len(readings),
            findings=len(analysis.findings), changes=len(changes),
            open_alerts=len(self.tracker.open_alerts()), points=points, read_s=read_s,
            analyse_s=analyse_s, total_s=time.perf_counter() - started, api=api,
            influx=influx, reread=self.cache.last_reread)
        log.info("pass %s", report.summary())
        return report

    def _save_snapshot(self, stamp: datetime) -> None:
        """Save the readings cache if ``snapshot_interval_s`` has passed since the last save
        (either way: passes may go back in time, e.g. a backfill after a later pass)."""
        self._passed_at = stamp
        interval = timedelta(seconds=self.section.snapshot_interval_s)
        if self._saved_at is not None and abs(stamp - self._saved_at) < interval:
            return
        self.cache.save()
        self._saved_at = stamp

    def deliver_alerts(self) -> Delivery | None:
        """Send pending changes to the ticket service (None when none is configured)."""
        return self.api.deliver(self.tracker) if self.api is not None else None

    def run_forever(self, stop: threading.Event) -> None:
        """Passes every ``interval_s`` until ``stop`` is set, riding out outages."""
        interval = self.section.interval_s
        next_pass = time.monotonic()
        pass_delay = retry_delay = 1.0
        next_retry: float | None = None
        while not stop.is_set():
            clock = time.monotonic()
            if clock >= next_pass:
                try:
                    report = self.run_pass()
                except InfluxError as exc:
                    log.warning("pass skipped, InfluxDB unavailable (%s); retry in %.0f s",
                                exc, pass_delay)
                    next_pass = clock + pass_delay
                    pass_delay = min(interval, pass_delay * 2)
                    continue
                pass_delay = 1.0
                next_pass = max(next_pass + interval, time.monotonic())
                pending = report.api is not None and not report.api.complete
                next_retry = time.monotonic() + retry_delay if pending else None
            elif next_retry is not None and clock >= next_retry:
                delivery = self.deliver_alerts()
                if delivery is None or delivery.complete:
                    next_retry, retry_delay = None, 1.0
                else:
                    retry_delay = min(interval, retry_delay * 2)
                    next_retry = clock + retry_delay
            wake = min(t for t in (next_pass, next_retry) if t is not None)
            stop.wait(max(0.0, wake - time.monotonic()))
