"""``python -m dashboards generate | check | deploy | preview`` (docs/dashboards.md)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from dashboards import generate


def _say(text: str, *, error: bool = False) -> None:
    print(text, file=sys.stderr if error else sys.stdout)  # noqa: T201 - CLI output


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dashboards", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    gen = commands.add_parser("generate", help="write dashboards/generated/*.json")
    gen.add_argument("--standards", type=Path, help="YAML overriding the default limits")
    gen.add_argument("--out", type=Path, default=generate.GENERATED)
    commands.add_parser("check", help="exit 1 when the committed JSON is not current")
    deploy = commands.add_parser("deploy", help="push the boards into an existing Grafana")
    deploy.add_argument("--url", required=True, help="Grafana base URL, e.g. http://host:3000")
    deploy.add_argument("--token", default=os.environ.get("GRAFANA_TOKEN"),
                        help="service account token (default: $GRAFANA_TOKEN)")
    deploy.add_argument("--folder", default="Rural water", help="folder title")
    deploy.add_argument("--timeout", type=float, default=10.0, help="HTTP timeout, s")
    preview = commands.add_parser("preview", help="render docs/images/boards/*.png")
    preview.add_argument("--out", type=Path, default=None, help="image folder")
    preview.add_argument("--influx-url", default=None,
                         help="query this InfluxDB (with data) instead of a fresh one "
                              "loaded with simulator data")
    preview.add_argument("--database", default="ruralwater")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "generate":
        from dashboards.standards import Standards

        for path in generate.write(args.out, Standards.load(args.standards)):
            _say(str(path))
        return 0
    if args.command == "check":
        stale = generate.stale_files()
        for name in stale:
            _say(f"out of date: dashboards/generated/{name} (run python -m dashboards "
                 "generate)")
        return 1 if stale else 0
    if args.command == "deploy":
        from dashboards.deploy import DeployError, deploy_boards

        if not args.token:
            _say("deploy needs --token or $GRAFANA_TOKEN", error=True)
            return 2
        try:
            results = deploy_boards(args.url, args.token, args.folder, timeout_s=args.timeout)
        except DeployError as exc:
            _say(f"deploy failed: {exc}", error=True)
            return 1
        for result in results:
            _say(str(result))
        return 0
    from dashboards.preview import render_previews

    for path in render_previews(args.out, influx_url=args.influx_url,
                                database=args.database):
        _say(str(path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
