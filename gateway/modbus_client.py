"""Reading a Modbus device (pump drive, analyser) with its register profile, TCP or RTU.

The pymodbus sync client is built outside (``make_client``) and passed in, so one client
serves every device on its line. pymodbus's own retries are turned off: the poller retries
per device and counts what failed.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field
from pymodbus.client import ModbusSerialClient, ModbusTcpClient
from pymodbus.client.base import ModbusBaseSyncClient
from pymodbus.exceptions import ModbusException

from common.contract import PumpReading, QualityReading
from gateway.modbus_profiles import (
    BlockSpec,
    DeviceProfile,
    RegisterBlock,
    RegisterError,
    decode_blocks,
    read_plan,
    to_reading,
)

log = logging.getLogger(__name__)


class ModbusReadError(Exception):
    """A read that failed: no answer, a Modbus exception response, or registers that do not
    decode. ``no_answer`` tells a silent device from one that answered badly."""

    def __init__(self, message: str, *, no_answer: bool) -> None:
        super().__init__(message)
        self.no_answer = no_answer


class ModbusTcpConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["modbus_tcp"] = "modbus_tcp"
    name: str = Field(default="", description="how devices name their link")
    host: str
    port: int = Field(default=502, ge=1, le=65535)
    timeout_s: float = Field(default=2.0, gt=0)


class ModbusRtuConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["modbus_rtu"] = "modbus_rtu"
    name: str = Field(default="", description="how devices name their link")
    port: str = Field(description="serial device, e.g. /dev/ttyUSB0")
    baudrate: int = 9600
    bytesize: Literal[7, 8] = 8
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    timeout_s: float = Field(default=1.0, gt=0)


ModbusLinkConfig = Annotated[ModbusTcpConfig | ModbusRtuConfig, Field(discriminator="type")]


def make_client(config: ModbusTcpConfig | ModbusRtuConfig) -> ModbusBaseSyncClient:
    """A pymodbus sync client for one line, not yet connected (it connects on first use)."""
    if isinstance(config, ModbusTcpConfig):
        return ModbusTcpClient(config.host, port=config.port, timeout=config.timeout_s,
                               retries=0)
    return ModbusSerialClient(config.port, baudrate=config.baudrate, bytesize=config.bytesize,
                              parity=config.parity, stopbits=config.stopbits,
                              timeout=config.timeout_s, retries=0)


def read_block(client: ModbusBaseSyncClient, spec: BlockSpec, unit_id: int) -> RegisterBlock:
    """One read of the plan, as the block the profile codec decodes."""
    readers = {
        "holding": client.read_holding_registers, "input": client.read_input_registers,
        "coil": client.read_coils, "discrete": client.read_discrete_inputs,
    }
    if not client.connect():  # no-op while connected; reconnects after a drop
        raise ModbusReadError(f"cannot connect to {client}", no_answer=True)
    try:
        response = readers[spec.table](spec.start, count=spec.count, device_id=unit_id)
    except ModbusException as exc:
        # pymodbus raises on a timeout or a dropped connection: the device did not answer.
        client.close()
        raise ModbusReadError(f"unit {unit_id} {spec.table} {spec.start}: {exc}",
                              no_answer=True) from exc
    if response.isError():
        raise ModbusReadError(f"unit {unit_id} {spec.table} {spec.start}: exception "
                              f"response {response}", no_answer=False)
    if spec.table in ("coil", "discrete"):
        values = tuple(int(bit) for bit in response.bits[: spec.count])
    else:
        values = tuple(response.registers)
    if len(values) != spec.count:
        raise ModbusReadError(f"unit {unit_id} {spec.table} {spec.start}: {len(values)} "
                              f"values for {spec.count}", no_answer=False)
    return RegisterBlock(table=spec.table, start=spec.start, values=values)


def read_device(
    client: ModbusBaseSyncClient,
    profile: DeviceProfile,
    unit_id: int,
    *,
    device: str,
    village: str,
    dma: str | None,
    time: datetime,
    timeout_s: float | None = None,
) -> PumpReading | QualityReading:
    """Read every block of the profile's plan and build the contract reading.

    ``timeout_s`` sets the reply timeout for this device's reads (pymodbus keeps one per
    client, read at each request); None keeps the client's.
    """
    if timeout_s is not None:
        client.comm_params.timeout_connect = timeout_s
    blocks = [read_block(client, spec, unit_id) for spec in read_plan(profile)]
    try:
        return to_reading(profile, decode_blocks(profile, blocks), device=device,
                          village=village, dma=dma, time=time)
    except RegisterError as exc:
        raise ModbusReadError(f"unit {unit_id}: {exc}", no_answer=False) from exc
