"""Link settings as data, and building a link from them."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway.links.base import Link
from gateway.links.serial_link import SerialLink
from gateway.links.tcp import TcpLink


class TcpLinkConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["tcp"] = "tcp"
    name: str = Field(default="", description="how devices name their link")
    host: str
    port: int = Field(ge=1, le=65535)
    connect_timeout_s: float = Field(default=5.0, gt=0)


class SerialLinkConfig(BaseModel):
    """Defaults are the usual M-Bus line: 2400 baud, 8 data bits, even parity, 1 stop bit."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["serial"] = "serial"
    name: str = Field(default="", description="how devices name their link")
    port: str = Field(description="/dev/ttyUSB0, or a pyserial URL such as socket://host:port")
    baudrate: int = 2400
    bytesize: Literal[5, 6, 7, 8] = 8
    parity: Literal["N", "E", "O", "M", "S"] = "E"
    stopbits: Literal[1, 2] = 1


LinkConfig = Annotated[TcpLinkConfig | SerialLinkConfig, Field(discriminator="type")]


def make_link(config: TcpLinkConfig | SerialLinkConfig) -> Link:
    """The link a config describes; it opens on first use."""
    if isinstance(config, TcpLinkConfig):
        return TcpLink(config.host, config.port, connect_timeout_s=config.connect_timeout_s)
    return SerialLink(config.port, baudrate=config.baudrate, bytesize=config.bytesize,
                      parity=config.parity, stopbits=config.stopbits)
