"""The analysis command line.

    python -m analysis worker                 a pass every RURALWATER_ANALYSIS__INTERVAL_S
    python -m analysis once [--now ISO]       one pass now (or as of --now); prints its summary
    python -m analysis offline --register register.json --readings readings.csv [--now ISO]
                                              alerts as JSON lines, no InfluxDB or API needed
    python -m analysis export --since ISO [--until ISO] --out readings.csv [--raw]
                                              InfluxDB readings as the offline CSV
    python -m analysis report --out DIR (--readings readings.csv | --since ISO [--until ISO])
                                              leakage and compliance report (CSV, XLSX, PNG)

Settings come from RURALWATER_* variables (README); --params overrides
RURALWATER_ANALYSIS__PARAMS_FILE, --register RURALWATER_ANALYSIS__REGISTER_FILE. The CSV is
the long format of docs/analysis.md: time (ISO 8601), device, kind, field, value.
Exit status: 0 done, 1 InfluxDB unavailable, 2 bad arguments or configuration.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from analysis.params import AnalysisParams, load_params
from analysis.pipeline import analyse
from analysis.report import write_report
from analysis.source import InfluxSource, empty_frame, raw_plan, read_csv, write_csv
from analysis.tracker import AlertTracker
from analysis.worker import ConfigurationError, Worker, load_register
from common.influx import InfluxClient, InfluxError
from common.register import County
from common.settings import Settings, get_settings

log = logging.getLogger(__name__)


def _say(text: str, *, error: bool = False) -> None:
    print(text, file=sys.stderr if error else sys.stdout)  # noqa: T201 - CLI output


def _moment(text: str) -> datetime:
    """An ISO 8601 time with offset (``Z`` allowed)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text}: give a UTC offset, e.g. 2026-06-05T00:00Z")
    return moment.astimezone(UTC)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m analysis", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", type=Path, help="JSON/YAML detection parameter overrides")
    parser.add_argument("--register", type=Path, help="asset register (register.json)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("worker", help="run passes periodically")
    once = commands.add_parser("once", help="one pass against InfluxDB")
    once.add_argument("--now", type=_moment, help="analyse as of this time (default: now)")
    offline = commands.add_parser("offline", help="analyse a readings CSV, print alerts")
    offline.add_argument("--readings", type=Path, required=True)
    offline.add_argument("--now", type=_moment, help="default: the newest reading")
    offline.add_argument("--state", type=Path,
                         help="keep alert state here between runs (default: none)")
    export = commands.add_parser("export", help="InfluxDB readings as the offline CSV")
    export.add_argument("--since", type=_moment, required=True)
    export.add_argument("--until", type=_moment, help="default: now")
    export.add_argument("--out", type=Path, required=True)
    export.add_argument("--raw", action="store_true",
                        help="every stored point (default: what the worker reads)")
    report = commands.add_parser("report", help="leakage and compliance report")
    report.add_argument("--out", type=Path, required=True)
    report.add_argument("--readings", type=Path, help="a readings CSV instead of InfluxDB")
    report.add_argument("--since", type=_moment, help="with InfluxDB: period start")
    report.add_argument("--until", type=_moment, help="period end (default: now / newest)")
    report.add_argument("--worst", type=int, default=3, help="DMAs to plot")
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    settings = get_settings()
    updates: dict[str, object] = {}
    if args.params is not None:
        updates["params_file"] = args.params
    if args.register is not None:
        updates["register_file"] = args.register
    if updates:
        section = settings.analysis.model_copy(update=updates)
        settings = settings.model_copy(update={"analysis": section})
    return settings


def _params(settings: Settings) -> AnalysisParams:
    try:
        return load_params(settings.analysis.params_file)
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"analysis parameters: {exc}") from exc


def _worker(settings: Settings) -> int:
    worker = Worker.from_settings(settings)
    stop = threading.Event()
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda *_: stop.set())
    log.info("analysis worker: a pass every %.0f s", settings.analysis.interval_s)
    try:
        worker.run_forever(stop)
    finally:
        worker.close()
    return 0


def _once(settings: Settings, now: datetime | None) -> int:
    worker = Worker.from_settings(settings)
    try:
        report = worker.run_pass(now)
    finally:
        worker.close()
    _say(json.dumps(report.summary()))
    return 0


def _offline(settings: Settings, readings_path: Path, now: datetime | None,
             state: Path | None) -> int:
    register = load_register(settings.analysis.register_file)
    params = _params(settings)
    readings = read_csv(readings_path)
    if readings.empty:
        raise ConfigurationError(f"{readings_path}: no readings")
    stamp = now or readings["time"].max().to_pydatetime()
    analysis = analyse(readings, register, params, stamp)
    with AlertTracker(state or ":memory:", targets=()) as tracker:
        tracker.apply(analysis)
        for alert in tracker.open_alerts():
            _say(alert.model_dump_json())
    return 0


def _export(settings: Settings, since: datetime, until: datetime | None, out: Path,
            raw: bool) -> int:
    register = _optional_register(settings.analysis.register_file)
    end = until or datetime.now(UTC)
    rows = 0
    with InfluxClient(settings.influx) as client:
        source = InfluxSource(client, register, plan=raw_plan() if raw else None,
                              detail=timedelta(hours=settings.analysis.detail_h),
                              max_points=settings.analysis.query_max_points)
        out.parent.mkdir(parents=True, exist_ok=True)
        for chunk in source.chunks(since, end):
            if not chunk.empty:
                rows += write_csv(chunk, out, append=rows > 0)
    if rows == 0:
        write_csv(empty_frame(), out)
    _say(f"{rows} readings written to {out}", error=True)
    return 0


def _optional_register(path: Path) -> County | None:
    """The register when its file exists (it sizes the meter queries), else None."""
    return load_register(path) if path.exists() else None


def _report(settings: Settings, args: argparse.Namespace) -> int:
    register = load_register(settings.analysis.register_file)
    params = _params(settings)
    if args.readings is not None:
        readings = read_csv(args.readings)
        until = args.until or readings["time"].max().to_pydatetime()
        since = args.since or readings["time"].min().to_pydatetime()
    elif args.since is not None:
        since, until = args.since, args.until or datetime.now(UTC)
        with InfluxClient(settings.influx) as client:
            source = InfluxSource(client, register,
                                  detail=timedelta(hours=settings.analysis.detail_h),
                                  max_points=settings.analysis.query_max_points)
            readings = source.read(since, until + timedelta(seconds=1))
    else:
        raise ConfigurationError("report needs --readings CSV or --since (InfluxDB)")
    days = max((until - since) / timedelta(days=1), 1.0)
    period = params.model_copy(update={"lookback_days": days})
    analysis = analyse(readings, register, period, until)
    files = write_report(args.out, dma_days=analysis.dma_days, supply=analysis.supply,
                         readings=readings, register=register, params=period,
                         worst=args.worst)
    for path in (files.villages_csv, files.dmas_csv, files.xlsx, *files.plots):
        _say(str(path))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = get_settings()
    logging.basicConfig(level=settings.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = _settings(args)
        if args.command == "worker":
            return _worker(settings)
        if args.command == "once":
            return _once(settings, args.now)
        if args.command == "offline":
            return _offline(settings, args.readings, args.now, args.state)
        if args.command == "export":
            return _export(settings, args.since, args.until, args.out, args.raw)
        return _report(settings, args)
    except ConfigurationError as exc:
        _say(f"configuration: {exc}", error=True)
        return 2
    except (OSError, ValueError) as exc:
        _say(f"error: {exc}", error=True)
        return 2
    except InfluxError as exc:
        _say(f"InfluxDB: {exc}", error=True)
        return 1

