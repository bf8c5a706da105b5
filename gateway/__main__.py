"""``python -m gateway [--config gateway.yaml]``: run a field gateway.

The YAML file names the gateway, its village, devices and links (``gateway/config.py``);
broker and outbox settings come from RURALWATER_MQTT__* and RURALWATER_GATEWAY__* variables.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path

from common.settings import get_settings
from gateway.config import ConfigError, load_config
from gateway.service import GatewayService, build_device_pollers, run_until
from gateway.uplink import build_mqtt_client

log = logging.getLogger("gateway")


def main(argv: list[str] | None = None) -> int:
    settings = get_settings()
    parser = argparse.ArgumentParser(prog="python -m gateway", description=__doc__)
    parser.add_argument("--config", type=Path, default=settings.gateway.config_file,
                        help="gateway YAML file (default: %(default)s)")
    parser.add_argument("--stats-interval", type=float, default=60.0,
                        help="seconds between stats log lines")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings.require_secrets("mqtt")
        config = load_config(args.config)
        pollers = build_device_pollers(config)
        client = build_mqtt_client(settings.mqtt, config.gateway)
    except (ConfigError, ValueError) as exc:
        log.error("%s", exc)
        return 2
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    # The pollers are both what produces readings and what carries out bureau commands.
    service = GatewayService(config=config, settings=settings.gateway,
                             mqtt_settings=settings.mqtt, mqtt_client=client,
                             controller=pollers, producers=[pollers] if pollers else [])
    run_until(stop, service, args.stats_interval)
    return 0


if __name__ == "__main__":
    sys.exit(main())
