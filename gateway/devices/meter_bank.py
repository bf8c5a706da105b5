"""A serial-to-TCP converter with a bank of CJ/T 188 prepaid meters behind it.

Speaks the real protocol byte for byte: it reads request frames from the TCP stream with the
same resynchronising ``FrameReader`` a gateway uses, answers 901F (metering), 8105 (purchase)
and A017 (valve control) from the simulated households, and stays silent for a meter the
simulation has offline, as a dead meter on an M-Bus line does. A valve command changes the
simulated household's valve, so the next 901F reply shows it.

``LineNoise`` makes the line look like a real two-wire bus: the echo of the request, random
garbage, frames cut short, and replies split into small TCP segments.
"""

from __future__ import annotations

import logging
import random
import socket
import threading
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway.cjt188 import (
    DI_METERING,
    DI_PURCHASE,
    DI_VALVE,
    Cjt188Error,
    Frame,
    FrameReader,
    MeteringData,
    MeterModel,
    PurchaseData,
    decode_request,
    decode_status,
    encode_frame,
    error_reply,
    metering_reply,
    purchase_reply,
    status_word,
    valve_reply,
)
from gateway.devices.field import MeterState, SimulatedField

log = logging.getLogger(__name__)

LAST_PURCHASE_YUAN = Decimal("100.00")
MAX_AMOUNT = Decimal("999999.99")
CENT = Decimal("0.01")


class LineNoise(BaseModel):
    """What a noisy line adds around each reply. Deterministic for a seed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    echo: bool = Field(default=False, description="echo the request first (two-wire bus)")
    garbage_probability: float = Field(default=0.0, ge=0.0, le=1.0)
    max_garbage_bytes: int = Field(default=16, ge=1, le=255)
    broken_frame_probability: float = Field(default=0.0, ge=0.0, le=1.0,
                                            description="a reply cut short before the good one")
    max_segment_bytes: int = Field(default=0, ge=0, description="split writes; 0 = whole")
    seed: int = 0


@dataclass
class MeterBankStats:
    requests: int = 0
    replies: int = 0
    silent: int = 0
    valve_commands: int = 0
    connections: int = 0


class MeterBankServer:
    """N meters behind one TCP port; ``start()`` / ``stop()`` or use as a context manager."""

    def __init__(self, field: SimulatedField, meters: list[str], model: MeterModel, *,
                 host: str = "127.0.0.1", port: int = 0,
                 noise: LineNoise | None = None) -> None:
        self.field = field
        self.meters = set(meters)
        self.model = model
        self.noise = noise or LineNoise()
        self.stats = MeterBankStats()
        self._rng = random.Random(self.noise.seed)
        self._listener = socket.create_server((host, port))
        self.host, self.port = self._listener.getsockname()[:2]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._connections: list[socket.socket] = []
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> MeterBankServer:
        thread = threading.Thread(target=self._accept_loop, name=f"meter-bank-{self.port}",
                                  daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads[:1]:
            thread.join(timeout=5)  # the accept loop: no new connection after this
        self._listener.close()
        with self._lock:
            for connection in self._connections:
                _close_quietly(connection)
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> MeterBankServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ serving

    def _accept_loop(self) -> None:
        # closing a listening socket does not wake accept() on Linux: poll for stop()
        self._listener.settimeout(0.1)
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # listener closed by stop()
            connection.settimeout(None)
            with self._lock:
                self._connections.append(connection)
                self.stats.connections += 1
            thread = threading.Thread(target=self._serve, args=(connection,), daemon=True,
                                      name=f"meter-bank-{self.port}-conn")
            thread.start()
            self._threads.append(thread)

    def _serve(self, connection: socket.socket) -> None:
        reader = FrameReader(keep_requests=True)
        with connection:
            while not self._stop.is_set():
                try:
                    chunk = connection.recv(4096)
                except OSError:
                    return
                if not chunk:
                    return
                for frame in reader.feed(chunk):
                    reply = self.answer(frame)
                    if reply is not None:
                        try:
                            self._send(connection, frame, reply)
                        except OSError:
                            return

    def _send(self, connection: socket.socket, request: Frame, reply: bytes) -> None:
        noise, rng = self.noise, self._rng
        out = bytearray()
        if noise.echo:
            out += encode_frame(request, self.model.preamble)
        if rng.random() < noise.garbage_probability:
            out += rng.randbytes(rng.randint(1, noise.max_garbage_bytes))
        if rng.random() < noise.broken_frame_probability:
            out += reply[: rng.randint(1, len(reply) - 1)]
        out += reply
        if rng.random() < noise.garbage_probability:
            out += rng.randbytes(rng.randint(1, noise.max_garbage_bytes))
        size = noise.max_segment_bytes or len(out)
        for start in range(0, len(out), size):
            connection.sendall(out[start : start + size])

    # ------------------------------------------------------------------ the meters

    def answer(self, frame: Frame) -> bytes | None:
        """The reply bytes for one frame seen on the line; None where a meter stays silent."""
        if frame.is_reply or frame.address not in self.meters:
            return None  # another device's traffic, or our own echo
        self.stats.requests += 1
        state = self.field.meter(frame.address)
        if state is None:
            self.stats.silent += 1
            return None
        try:
            request = decode_request(frame, self.model)
        except Cjt188Error as exc:
            log.info("meter %s refuses request: %s", frame.address, exc)
            self.stats.replies += 1
            return encode_frame(error_reply(frame.address, self.model, function=frame.function,
                                            raw_status=self._status(state)))
        if request.di == DI_VALVE and request.valve_open is not None:
            self.stats.valve_commands += 1
            self.field.command_valve(frame.address, request.valve_open)
            state = self.field.meter(frame.address) or state
        self.stats.replies += 1
        return encode_frame(self._reply(frame.address, request.di, request.ser, state))

    def _reply(self, address: str, di: int, ser: int, state: MeterState) -> Frame:
        raw = self._status(state)
        if di == DI_METERING:
            # The register counts whole hundredths of a cubic metre: truncate, never round up.
            volume = Decimal(str(state.volume_m3)).quantize(CENT, rounding="ROUND_FLOOR")
            data = MeteringData(
                volume_m3=volume,
                settlement_volume_m3=volume.to_integral_value(rounding="ROUND_FLOOR"),
                meter_clock=self._meter_clock(state), valve=_valve(state),
                battery_low=state.battery_low, tamper=state.tamper, raw_status=raw,
                ser=ser,
            )
            return metering_reply(address, data, self.model)
        if di == DI_PURCHASE:
            balance = min(MAX_AMOUNT, max(Decimal(0), Decimal(str(state.balance_yuan))))
            balance = balance.quantize(CENT, rounding="ROUND_FLOOR")
            data_p = PurchaseData(
                purchase_number=1, last_purchase_yuan=LAST_PURCHASE_YUAN,
                total_purchased_yuan=min(MAX_AMOUNT, balance + LAST_PURCHASE_YUAN),
                balance_yuan=balance,
                status=decode_status(raw, self.model), ser=ser,
            )
            return purchase_reply(address, data_p, self.model)
        return valve_reply(address, self.model, raw_status=raw, ser=ser)

    def _status(self, state: MeterState) -> int:
        layout = self.model.status
        return status_word(
            self.model, valve=_valve(state),
            battery_low=state.battery_low and layout.battery_low_bit is not None,
            tamper=state.tamper and layout.tamper_bit is not None,
        )

    def _meter_clock(self, state: MeterState) -> datetime:
        # The meter clock runs in local time (the model's zone) and knows no offset.
        return state.clock.astimezone(self.model.clock_tz).replace(tzinfo=None, microsecond=0)


def _valve(state: MeterState) -> Literal["open", "closed"]:
    return "open" if state.valve_open else "closed"


def _close_quietly(connection: socket.socket) -> None:
    try:
        connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed by the peer
    connection.close()
