"""The gateway process: an outbox, an uplink, and whatever produces readings into the outbox.

Producers (the device pollers, or anything else) are started with the outbox as their
:class:`~gateway.sink.ReadingSink`; the uplink hands bureau commands to a
:class:`~gateway.sink.DeviceController`. The MQTT client is built outside and passed in.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import paho.mqtt.client as mqtt
from pydantic import ValidationError

from common.settings import GatewaySettings, MqttSettings
from gateway.config import ConfigError, GatewayConfig
from gateway.outbox import Outbox
from gateway.poller import PollDefaults, PollerConfigError, PollerGroup, build_pollers
from gateway.sink import DeviceController, ReadingSink
from gateway.uplink import Uplink

log = logging.getLogger(__name__)


class Producer(Protocol):
    """Something that puts readings and events into a sink until stopped (e.g. a poller)."""

    def start(self, sink: ReadingSink) -> None: ...

    def stop(self) -> None: ...


class NoDevices:
    """The controller of a gateway with no device links: every command fails, saying why."""

    def poll_now(self, device: str | None) -> str:
        raise LookupError("this gateway has no device pollers configured")

    def set_valve(self, device: str, open_valve: bool) -> str:
        raise LookupError(f"this gateway has no device pollers configured ({device})")


def build_device_pollers(config: GatewayConfig) -> PollerGroup | None:
    """The pollers for the configured devices and links (None when there are no devices)."""
    if not config.devices:
        return None
    try:
        defaults = PollDefaults.model_validate(config.polling)
        return build_pollers(village=config.village, dma=config.dma,
                             devices=config.device_entries(), links=config.links,
                             defaults=defaults)
    except (ValidationError, PollerConfigError) as exc:
        raise ConfigError(f"gateway {config.gateway}: {exc}") from exc


def outbox_path(settings: GatewaySettings, gateway: str) -> Path:
    return settings.data_dir / f"outbox-{gateway}.sqlite3"


def open_outbox(settings: GatewaySettings, gateway: str) -> Outbox:
    return Outbox(outbox_path(settings, gateway), gateway, max_bytes=settings.outbox_max_bytes,
                  readings_per_message=settings.readings_per_message,
                  synchronous=settings.outbox_synchronous)


class GatewayService:
    def __init__(
        self,
        *,
        config: GatewayConfig,
        settings: GatewaySettings,
        mqtt_settings: MqttSettings,
        mqtt_client: mqtt.Client,
        controller: DeviceController | None = None,
        producers: Sequence[Producer] = (),
    ) -> None:
        self.config = config
        self.outbox = open_outbox(settings, config.gateway)
        self.uplink = Uplink(client=mqtt_client, outbox=self.outbox,
                             controller=controller or NoDevices(),
                             inventory=config.inventory(), mqtt_settings=mqtt_settings,
                             settings=settings)
        self._producers = list(producers)

    def start(self) -> None:
        self.uplink.start()
        for producer in self._producers:
            producer.start(self.outbox)
        log.info("gateway %s running: %d producer(s), %d message(s) waiting in the outbox",
                 self.config.gateway, len(self._producers), self.outbox.waiting)

    def stop(self) -> None:
        for producer in self._producers:
            producer.stop()
        self.uplink.stop()
        self.outbox.close()

    def snapshot(self) -> dict[str, Any]:
        return self.uplink.snapshot()


def run_until(stop: threading.Event, service: GatewayService, stats_interval_s: float) -> None:
    """Run until ``stop`` is set, logging a stats line every ``stats_interval_s``."""
    service.start()
    try:
        while not stop.wait(stats_interval_s):
            snap = service.snapshot()
            log.info("connected=%s waiting=%d published=%d acked=%d inflight=%d dropped=%d",
                     snap["mqtt_connected"], snap["outbox_messages"], snap.get("published", 0),
                     snap.get("acked", 0), snap["inflight"], snap["dropped_messages"])
    finally:
        service.stop()
