"""Device simulators that speak the real protocols, driven by the county simulator's physics.

- ``SimulatedField``: one ``simulator.engine.CountySimulation`` shared by the device
  simulators of a test or demo, with a lock and a per-step view of every device.
- ``MeterBankServer``: a serial-to-TCP converter with N CJ/T 188 meters behind it; valve
  commands change the simulated household's valve; optional line noise (garbage, echoes,
  broken frames) like a real M-Bus line.
- ``ModbusDeviceServer``: a pymodbus TCP server for pump drives and analysers, serving the
  register image ``modbus_profiles.encode_image`` builds from the simulated values.
"""

from gateway.devices.field import SimulatedField
from gateway.devices.meter_bank import LineNoise, MeterBankServer, MeterBankStats
from gateway.devices.modbus_server import ModbusDeviceServer, SimulatedModbusDevice

__all__ = [
    "LineNoise", "MeterBankServer", "MeterBankStats", "ModbusDeviceServer", "SimulatedField",
    "SimulatedModbusDevice",
]
