"""CJ/T 188 codec for IC-card prepaid water meters: pure functions, bytes in, typed values out.

No I/O here: the serial/M-Bus link owns the port and hands bytes to ``FrameReader``.
"""

from gateway.cjt188.errors import (
    Cjt188BcdError,
    Cjt188ChecksumError,
    Cjt188Error,
    Cjt188FramingError,
    Cjt188LengthError,
    Cjt188MeterError,
    Cjt188TruncatedError,
    Cjt188UnsupportedError,
    Cjt188ValueError,
)
from gateway.cjt188.frame import BROADCAST, Frame, checksum, decode_frame, encode_frame
from gateway.cjt188.messages import (
    DI_METERING,
    DI_PURCHASE,
    DI_VALVE,
    MeteringData,
    MeterStatus,
    PurchaseData,
    Request,
    ValveReply,
    VolumeUnit,
    decode_metering,
    decode_purchase,
    decode_reply,
    decode_request,
    decode_status,
    error_reply,
    metering_reply,
    metering_request,
    purchase_reply,
    purchase_request,
    status_word,
    to_meter_reading,
    valve_reply,
    valve_request,
)
from gateway.cjt188.meter_model import (
    MeterModel,
    MeterModelError,
    StatusLayout,
    get_model,
    load_model,
    load_models,
    shipped_models,
)
from gateway.cjt188.reader import FrameReader, ReaderStats

__all__ = [
    "BROADCAST", "DI_METERING", "DI_PURCHASE", "DI_VALVE",
    "Cjt188BcdError", "Cjt188ChecksumError", "Cjt188Error", "Cjt188FramingError",
    "Cjt188LengthError", "Cjt188MeterError", "Cjt188TruncatedError", "Cjt188UnsupportedError",
    "Cjt188ValueError", "Frame", "FrameReader", "MeterModel", "MeterModelError", "MeterStatus",
    "MeteringData", "PurchaseData", "ReaderStats", "Request", "StatusLayout", "ValveReply",
    "VolumeUnit", "checksum", "decode_frame", "decode_metering", "decode_purchase",
    "decode_reply", "decode_request", "decode_status", "encode_frame", "error_reply",
    "get_model", "load_model", "load_models", "metering_reply", "metering_request",
    "purchase_reply", "purchase_request", "shipped_models", "status_word", "to_meter_reading",
    "valve_reply", "valve_request",
]
