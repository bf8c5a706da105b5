"""``python -m collector``: run the collector with settings from RURALWATER_* variables."""

from __future__ import annotations

import logging
import signal
import threading

from collector.service import Collector, build_mqtt_client, run_until
from common.influx import InfluxClient
from common.settings import get_settings


def main() -> None:
    settings = get_settings()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings.require_secrets("mqtt", "influx")
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    with InfluxClient(settings.influx) as influx:
        collector = Collector(
            mqtt_client=build_mqtt_client(settings.mqtt, settings.collector),
            mqtt_settings=settings.mqtt,
            influx=influx,
            settings=settings.collector,
        )
        run_until(stop, collector, settings.collector.stats_interval_s)


if __name__ == "__main__":
    main()
