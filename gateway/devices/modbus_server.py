"""Pump drives and analysers on a Modbus TCP server (pymodbus), fed by simulated values.

Each simulated device is a pymodbus ``SimDevice`` with one register block per table its
profile uses; on every read its action rebuilds the block from the register image
``modbus_profiles.encode_image`` makes of the device's current values, so the gateway reads
exactly the registers a real drive of that profile would show. Several devices (unit ids)
can share one server, like drives on one RS-485 line behind a Modbus gateway.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial

from pymodbus import FramerType
from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from gateway.modbus_profiles import DeviceProfile, encode_image
from gateway.modbus_profiles.profile import BIT_TABLES, READING_MODELS, Table

log = logging.getLogger(__name__)

Value = bool | int | float
ValuesSource = Callable[[], Mapping[str, Value] | None]
_TABLE_OF_FUNCTION: dict[int, Table] = {3: "holding", 4: "input"}
_TABLE_SLOT = {"holding": 2, "input": 3}


@dataclass
class SimulatedModbusDevice:
    """One device: its unit id, its register profile and where its values come from.

    ``values`` returns contract field -> value, or None while the device is failing (it
    then answers with a Modbus exception, device failure).
    """

    unit_id: int
    profile: DeviceProfile
    values: ValuesSource


def _check_profile(profile: DeviceProfile) -> None:
    if any(point.table in BIT_TABLES for point in profile.points):
        raise ValueError(f"profile {profile.name}: the simulator serves register tables only")
    if profile.kind not in READING_MODELS:
        raise ValueError(f"profile {profile.name}: unknown kind {profile.kind}")


def _blocks(profile: DeviceProfile) -> tuple[list[SimData], list[SimData], list[SimData],
                                             list[SimData]]:
    # Coils and discrete inputs are not served (checked above); pymodbus needs a bit block each.
    blocks: tuple[list[SimData], ...] = ([SimData(0, values=False, datatype=DataType.BITS)],
                                         [SimData(0, values=False, datatype=DataType.BITS)],
                                         [], [])
    for table, slot in _TABLE_SLOT.items():
        points = [p for p in profile.points if p.table == table]
        if not points:
            # pymodbus wants every table defined: one invalid register answers "illegal address".
            blocks[slot].append(SimData(0, count=1, datatype=DataType.INVALID))
            continue
        low = min(p.address for p in points)
        high = max(p.address + p.count for p in points)
        blocks[slot].append(SimData(low, count=high - low, values=0,
                                    datatype=DataType.REGISTERS))
    return blocks[0], blocks[1], blocks[2], blocks[3]


async def _refresh(device: SimulatedModbusDevice, function_code: int, start_address: int,
                   _address: int, _count: int, registers: list[int],
                   set_values: list[int] | list[bool] | None) -> ExcCodes | None:
    """pymodbus calls this on each access: rebuild the block from the current values."""
    if set_values is not None:
        return ExcCodes.ILLEGAL_FUNCTION  # read-only telemetry
    table = _TABLE_OF_FUNCTION.get(function_code)
    if table is None:
        return ExcCodes.ILLEGAL_FUNCTION
    values = device.values()
    if values is None:
        return ExcCodes.DEVICE_FAILURE
    image = encode_image(device.profile, values).get(table, {})
    for index in range(len(registers)):
        registers[index] = image.get(start_address + index, 0)
    return None


class ModbusDeviceServer:
    """A Modbus TCP server for simulated devices, run on its own thread and event loop."""

    def __init__(self, devices: list[SimulatedModbusDevice], *, host: str = "127.0.0.1",
                 port: int, rtu: bool = False) -> None:
        for device in devices:
            _check_profile(device.profile)
        self.host, self.port = host, port
        # rtu: RTU frames over the TCP stream, as a transparent serial-to-TCP converter
        # passes an RS-485 line's traffic through.
        self.framer = FramerType.RTU if rtu else FramerType.SOCKET
        sim_devices = [
            SimDevice(device.unit_id, simdata=_blocks(device.profile),
                      action=partial(_refresh, device))
            for device in devices
        ]
        self._sim_devices = sim_devices
        self._loop = asyncio.new_event_loop()
        self._server: ModbusTcpServer | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name=f"modbus-sim-{port}")

    def start(self) -> ModbusDeviceServer:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._serve(), self._loop)
        future.result(timeout=10)
        return self

    async def _serve(self) -> None:
        self._server = ModbusTcpServer(self._sim_devices, address=(self.host, self.port),
                                       framer=self.framer)
        await self._server.serve_forever(background=True)

    def stop(self) -> None:
        if self._server is not None:
            asyncio.run_coroutine_threadsafe(self._server.shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    def __enter__(self) -> ModbusDeviceServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
