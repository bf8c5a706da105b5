"""A gateway's YAML configuration file: who it is, its village, its devices and links.

The uplink reads only the identity and each device's inventory fields (``device``, ``kind``,
``village``, ``dma``, ``model``); every other key of a device, and the ``links`` section, belong
to the device pollers (``gateway/poller.py``) and are kept as written for them::

    gateway: gw-v01
    village: v01
    dma: dma-v01              # default for devices that name none
    devices:
      - {device: m-0001, kind: meter, model: default, link: bus1, address: "78330011223344"}
      - {device: p-01, kind: pump, model: generic-vfd-pump, link: plc, unit: 1}
    links:
      - {name: bus1, type: serial, port: /dev/ttyUSB0, baudrate: 2400, parity: E}
    polling: {meter_interval_s: 3600, pump_interval_s: 30}   # optional
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from common.contract import DeviceInfo, GatewayId, Identifier


class ConfigError(ValueError):
    """The gateway configuration file is missing, not YAML, or not valid."""


class DeviceEntry(BaseModel):
    """One device; keys other than these are the pollers' (link, address, unit, ...)."""

    model_config = ConfigDict(extra="allow", frozen=True)
    device: Identifier
    kind: Literal["meter", "pump", "dma_inflow", "tank", "quality"]
    village: Identifier | None = None
    dma: Identifier | None = None
    model: str = ""


class GatewayConfig(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)
    gateway: GatewayId
    village: Identifier
    dma: Identifier | None = None
    devices: list[DeviceEntry] = Field(default_factory=list)
    links: list[dict[str, Any]] = Field(default_factory=list)
    # Poll intervals, timeouts and retries for the pollers (gateway.poller.PollDefaults).
    polling: dict[str, Any] = Field(default_factory=dict)

    def device_entries(self) -> list[dict[str, Any]]:
        """Each device as written in the file, for the pollers."""
        return [entry.model_dump(exclude_none=True) for entry in self.devices]

    def inventory(self) -> list[DeviceInfo]:
        """The device list for the birth message; village and DMA default to the gateway's."""
        return [
            DeviceInfo(device=entry.device, kind=entry.kind,
                       village=entry.village or self.village, dma=entry.dma or self.dma,
                       model=entry.model)
            for entry in self.devices
        ]


def load_config(path: Path) -> GatewayConfig:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read gateway config {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"gateway config {path} is not YAML: {exc}") from exc
    try:
        config = GatewayConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"gateway config {path} is not valid: {exc}") from exc
    duplicates = {e.device for e in config.devices
                  if sum(other.device == e.device for other in config.devices) > 1}
    if duplicates:
        raise ConfigError(f"gateway config {path}: devices listed twice: {sorted(duplicates)}")
    return config
