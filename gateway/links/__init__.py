"""Byte links to field devices, and CJ/T 188 request/reply over them.

- ``TcpLink``: a serial-to-TCP converter (raw TCP server mode) in front of an M-Bus or
  RS-485 line.
- ``SerialLink``: a local serial port via pyserial (M-Bus is typically 2400 baud 8E1); any
  pyserial URL works too (``socket://host:port``, ``rfc2217://``, ``loop://``).
- ``MeterBus``: one CJ/T 188 transaction at a time on a link: send a request, wait for the
  matching reply through a resynchronising ``FrameReader``.
"""

from gateway.links.base import Link, LinkClosedError, LinkError
from gateway.links.config import LinkConfig, SerialLinkConfig, TcpLinkConfig, make_link
from gateway.links.meter_bus import MeterBus, MeterBusStats, NoReplyError
from gateway.links.serial_link import SerialLink
from gateway.links.tcp import TcpLink

__all__ = [
    "Link", "LinkClosedError", "LinkConfig", "LinkError", "MeterBus", "MeterBusStats",
    "NoReplyError", "SerialLink", "SerialLinkConfig", "TcpLink", "TcpLinkConfig", "make_link",
]
