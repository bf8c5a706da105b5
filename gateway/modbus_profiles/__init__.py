"""Modbus register profiles as data, and pure register <-> value conversions.

No I/O here: the Modbus link reads the blocks ``read_plan`` lists and hands them over.
"""

from gateway.modbus_profiles.codec import (
    BlockSpec,
    RegisterBlock,
    RegisterError,
    decode_block,
    decode_blocks,
    decode_point,
    decode_raw,
    encode_image,
    encode_point,
    encode_raw,
    image_block,
    read_plan,
    to_reading,
)
from gateway.modbus_profiles.profile import (
    DeviceProfile,
    ModbusProfileError,
    Point,
    get_profile,
    load_profile,
    load_profiles,
    shipped_profiles,
)

__all__ = [
    "BlockSpec", "DeviceProfile", "ModbusProfileError", "Point", "RegisterBlock",
    "RegisterError", "decode_block", "decode_blocks", "decode_point", "decode_raw",
    "encode_image", "encode_point", "encode_raw", "get_profile", "image_block", "load_profile",
    "load_profiles", "read_plan", "shipped_profiles", "to_reading",
]
