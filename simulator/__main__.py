"""``python -m simulator``: publish a simulated county to MQTT and write its ground truth."""

from __future__ import annotations

import argparse
import logging
from datetime import datetime
from pathlib import Path

from common.settings import get_settings
from simulator.incidents import ScenarioError
from simulator.publisher import Progress, build_client, connect
from simulator.session import RunPlan, run


def _parse(argv: list[str] | None) -> argparse.Namespace:
    defaults = get_settings().simulator
    parser = argparse.ArgumentParser(prog="python -m simulator", description=__doc__)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--villages", type=int, default=defaults.villages)
    parser.add_argument("--households-per-village", type=int,
                        default=defaults.households_per_village,
                        help="0 draws a realistic ~300 per village")
    parser.add_argument("--days", type=float, default=defaults.days)
    parser.add_argument("--speed", type=float, default=defaults.speed,
                        help="simulated seconds per wall second; 0 = as fast as possible")
    parser.add_argument("--missing-rate", type=float, default=0.005,
                        help="share of readings lost on the way (deterministic)")
    parser.add_argument("--start", type=_aware, default=None,
                        help="simulated start (ISO, with offset); default: now - days")
    parser.add_argument("--output-dir", type=Path, default=defaults.output_dir)
    parser.add_argument("--scenario", type=Path, default=None,
                        help="incidents file (JSON or YAML); default: a representative mix")
    parser.add_argument("--no-incidents", action="store_true")
    parser.add_argument("--single-reading", action="store_true",
                        help="one reading per message instead of gateway batches of 60")
    return parser.parse_args(argv)


def _aware(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs an offset, e.g. +08:00")
    return moment


def _print_progress(progress: Progress) -> None:
    print(f"sim {progress.sim_time:%Y-%m-%d %H:%M}  messages {progress.messages:>8}  "  # noqa: T201
          f"readings {progress.total_readings:>9}  ({progress.readings_per_s:,.0f}/s)  "
          f"events {progress.events:>5}  incidents {progress.incidents_started}/"
          f"{progress.incidents_total}", flush=True)


def main(argv: list[str] | None = None) -> None:
    args = _parse(argv)
    settings = get_settings()
    logging.basicConfig(level=settings.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    plan = RunPlan(seed=args.seed, villages=args.villages,
                   households_per_village=args.households_per_village or None, days=args.days,
                   speed=args.speed, output_dir=args.output_dir, start=args.start,
                   single_reading=args.single_reading, scenario=args.scenario,
                   no_incidents=args.no_incidents, missing_rate=args.missing_rate)
    client = build_client(settings.mqtt, client_id=f"simulator-{args.seed}")
    try:
        connect(client, settings.mqtt)
    except ConnectionError as exc:
        raise SystemExit(f"simulator: {exc}") from exc
    try:
        result = run(plan, client, progress=_print_progress)
    except ScenarioError as exc:
        raise SystemExit(f"simulator: {exc}") from exc
    finally:
        client.disconnect()
        client.loop_stop()
    print(f"published {result.messages} messages from {result.gateways} gateways "  # noqa: T201
          f"({result.acknowledged} acknowledged): {result.total_readings} readings "
          f"{result.readings}, {result.events} events, {result.incidents_total} incidents, "
          f"in {result.wall_s:.1f} s; ground truth (register.json, incidents.json, "
          f"summary.json) in {args.output_dir}")


if __name__ == "__main__":
    main()
