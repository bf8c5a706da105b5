"""``python -m gateway.devices``: a simulated county's field devices on local TCP ports.

For every village: a serial-to-TCP converter with the village's CJ/T 188 meters behind it and
a Modbus TCP gateway with its pump drives (unit 1, 2, ...) and analysers (after the drives),
all driven by the county simulator; and a gateway configuration file ``gw-<village>.yaml``
naming those devices and links, ready for ``python -m gateway``. Simulated time runs at
``--speed`` simulated seconds per wall second until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from contextlib import ExitStack
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from common.localservices import free_port
from common.settings import get_settings
from gateway.cjt188 import get_model
from gateway.devices.field import SimulatedField
from gateway.devices.meter_bank import LineNoise, MeterBankServer
from gateway.devices.modbus_server import ModbusDeviceServer, SimulatedModbusDevice
from gateway.modbus_profiles import get_profile
from simulator.engine import STEP

log = logging.getLogger(__name__)

PUMP_PROFILE = "generic-vfd-pump"
ANALYSER_PROFILE = "generic-quality-analyser"
METER_MODEL = "default"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m gateway.devices", description=__doc__)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--villages", type=int, default=1)
    parser.add_argument("--households-per-village", type=int, default=20)
    parser.add_argument("--speed", type=float, default=60.0,
                        help="simulated seconds per wall second")
    parser.add_argument("--noise", action="store_true",
                        help="echoes, garbage and broken frames on the meter lines")
    parser.add_argument("--out", type=Path, default=Path("var/devices"),
                        help="folder for the gateway configuration files")
    return parser.parse_args(argv)


def _village_servers(field: SimulatedField, village: str, stack: ExitStack,
                     noise: LineNoise | None) -> dict[str, Any]:
    """Start one village's converter and Modbus gateway; return its gateway config."""
    county = field.county
    meters = [h.meter for h in county.households if h.village == village]
    bank = stack.enter_context(MeterBankServer(field, meters, get_model(METER_MODEL),
                                               noise=noise))
    pump, analyser = get_profile(PUMP_PROFILE), get_profile(ANALYSER_PROFILE)
    devices: list[dict[str, Any]] = [
        {"device": m, "kind": "meter", "model": METER_MODEL, "link": "mbus", "address": m}
        for m in meters]
    sim_devices = []
    wells = [w.id for w in county.wells if w.village == village]
    analysers = [a.id for a in county.analysers if a.village == village]
    for unit, well in enumerate(wells, start=1):
        sim_devices.append(SimulatedModbusDevice(unit, pump, partial(field.pump, well)))
        devices.append({"device": well, "kind": "pump", "model": PUMP_PROFILE, "link": "plc",
                        "unit": unit})
    for unit, analyser_id in enumerate(analysers, start=len(wells) + 1):
        sim_devices.append(SimulatedModbusDevice(unit, analyser,
                                                 partial(field.analyser, analyser_id)))
        devices.append({"device": analyser_id, "kind": "quality", "model": ANALYSER_PROFILE,
                        "link": "plc", "unit": unit})
    port = free_port()
    stack.enter_context(ModbusDeviceServer(sim_devices, port=port))
    return {
        "gateway": f"gw-{village}", "village": village, "dma": f"dma-{village}",
        "devices": devices,
        "links": [{"name": "mbus", "type": "tcp", "host": bank.host, "port": bank.port},
                  {"name": "plc", "type": "modbus_tcp", "host": "127.0.0.1", "port": port}],
    }


def main(argv: list[str] | None = None) -> None:
    args = _parse(argv)
    logging.basicConfig(level=get_settings().log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    field = SimulatedField.build(seed=args.seed, villages=args.villages,
                                 households_per_village=args.households_per_village,
                                 start=datetime.now(UTC).replace(second=0, microsecond=0))
    noise = LineNoise(echo=True, garbage_probability=0.3, broken_frame_probability=0.1,
                      max_segment_bytes=8, seed=args.seed) if args.noise else None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    args.out.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        for village in field.county.villages:
            config = _village_servers(field, village.id, stack, noise)
            path = args.out / f"{config['gateway']}.yaml"
            path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
            print(f"{config['gateway']}: {len(config['devices'])} devices, "  # noqa: T201
                  f"config {path}", flush=True)
        print("ready", flush=True)  # noqa: T201 - CLI output, scripts wait for it
        step_s = STEP.total_seconds() / args.speed
        while not stop.wait(step_s):
            field.advance(1)
    log.info("device simulators stopped")


if __name__ == "__main__":
    main()
