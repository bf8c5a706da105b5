"""Polling the field devices of one gateway: a scheduler per link, retries, offline detection.

Each link (an M-Bus line of prepaid meters, an RS-485/TCP line of Modbus drives and analysers)
gets one ``LinkPoller`` running on its own thread: a half-duplex line carries one
conversation at a time, so the poller owns it and commands from the bureau wait their turn
on the same lock. Every device has its interval (meters hourly, pumps and analysers every
10-60 s by default), its reply timeout and its retries. A device that gives no answer through
all its attempts on ``offline_after_polls`` polls in a row is reported offline (a
``DeviceEvent`` with code ``offline``); its next answer reports it online again (the same
code with ``active=False``). Good readings, and events for the conditions they show (valve
closed, low battery, tamper, pump fault), go to the ``ReadingSink``.

``PollerGroup`` runs the link pollers and is the gateway's ``DeviceController``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator
from pymodbus.client.base import ModbusBaseSyncClient

from common.contract import DeviceEvent, Identifier, MeterReading, PumpReading, Reading
from gateway.cjt188 import (
    Cjt188Error,
    Cjt188MeterError,
    MeterModel,
    MeterModelError,
    PurchaseData,
    ValveReply,
    decode_metering,
    decode_purchase,
    decode_reply,
    get_model,
    metering_request,
    purchase_request,
    to_meter_reading,
    valve_request,
)
from gateway.links import (
    LinkError,
    MeterBus,
    NoReplyError,
    SerialLinkConfig,
    TcpLinkConfig,
    make_link,
)
from gateway.modbus_client import (
    ModbusReadError,
    ModbusRtuConfig,
    ModbusTcpConfig,
    make_client,
    read_device,
)
from gateway.modbus_profiles import DeviceProfile, ModbusProfileError, get_profile
from gateway.sink import ReadingSink

log = logging.getLogger(__name__)
#: readings a polling round hands to the sink at once: one full telemetry message
ROUND_BATCH = 60

Address = Annotated[str, Field(pattern=r"^[0-9]{14}$")]
Severity = Literal["info", "warning", "critical"]


# --------------------------------------------------------------------------- configuration


class _RoundBuffer:
    """A ReadingSink that hands readings on in groups of ``size`` (a message's worth).

    Events go on at once: an alarm should not wait for the rest of a meter round.
    """

    def __init__(self, sink: ReadingSink, size: int = ROUND_BATCH) -> None:
        self._sink = sink
        self._size = size
        self._readings: list[Reading] = []

    def put_readings(self, readings: Sequence[Reading]) -> None:
        self._readings.extend(readings)
        if len(self._readings) >= self._size:
            self.flush()

    def put_events(self, events: Sequence[DeviceEvent]) -> None:
        self._sink.put_events(events)

    def flush(self) -> None:
        if self._readings:
            self._sink.put_readings(self._readings)
            self._readings = []


class PollDefaults(BaseModel):
    """Per-kind intervals and per-device defaults (each device may override them)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    meter_interval_s: float = Field(default=3600.0, gt=0)
    pump_interval_s: float = Field(default=30.0, gt=0)
    quality_interval_s: float = Field(default=60.0, gt=0)
    timeout_s: float = Field(default=2.0, gt=0, description="reply timeout per attempt")
    retries: int = Field(default=2, ge=0, description="attempts after the first, per poll")
    offline_after_polls: int = Field(default=1, ge=1)
    read_balance: bool = Field(default=True, description="meters: read DI 8105 too")

    def interval_of(self, kind: str) -> float:
        return {"meter": self.meter_interval_s, "pump": self.pump_interval_s,
                "quality": self.quality_interval_s}[kind]


class DeviceConfig(BaseModel):
    """One device on a link: a meter by its CJ/T 188 address, a drive or analyser by unit id.

    Field names follow the gateway configuration file (``gateway/config.py``): ``device``
    and ``unit`` there are ``id`` and ``unit_id`` here.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    id: Identifier = Field(alias="device")
    kind: Literal["meter", "pump", "quality"]
    village: Identifier
    dma: Identifier | None = None
    link: str = Field(default="", description="the name of the link the device is on")
    address: Address | None = Field(default=None, description="meters: 14-digit address")
    unit_id: int | None = Field(default=None, ge=1, le=247, alias="unit",
                                description="Modbus unit id")
    model: str | None = Field(default=None, description="meter model or Modbus profile name")
    interval_s: float | None = Field(default=None, gt=0)
    timeout_s: float | None = Field(default=None, gt=0)
    retries: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _addressed(self) -> DeviceConfig:
        if self.kind == "meter" and self.address is None:
            raise ValueError(f"meter {self.id} needs its 14-digit address")
        if self.kind != "meter" and (self.unit_id is None or self.model is None):
            raise ValueError(f"{self.kind} {self.id} needs a unit_id and a profile (model)")
        return self


# --------------------------------------------------------------------------- drivers


class DeviceSilentError(Exception):
    """The device gave no answer (timeout, link down)."""


class DeviceAnswerError(Exception):
    """The device answered, but not with a usable reading (error reply, bad values)."""


class CommandError(Exception):
    """A command from the bureau that could not be carried out; the message says why."""


class Driver(Protocol):
    """Reads one device of a link's protocol; raises DeviceSilentError or DeviceAnswerError."""

    def read(self, device: DeviceConfig, *, timeout_s: float, time: datetime) -> Reading: ...


class MeterDriver:
    """CJ/T 188 meters on a ``MeterBus``: 901F for volume and status, 8105 for the balance."""

    def __init__(self, bus: MeterBus, *, models: Mapping[str, MeterModel] | None = None,
                 read_balance: bool = True) -> None:
        self.bus = bus
        self._models = dict(models or {})
        self.read_balance = read_balance
        self._ser = 0

    def model_of(self, device: DeviceConfig) -> MeterModel:
        name = device.model or "default"
        if name not in self._models:
            self._models[name] = get_model(name)
        return self._models[name]

    def _next_ser(self) -> int:
        # A new SER per request, so a late reply to an earlier request is never taken.
        self._ser = (self._ser + 1) % 256
        return self._ser

    def read(self, device: DeviceConfig, *, timeout_s: float, time: datetime) -> MeterReading:
        model = self.model_of(device)
        address = device.address or ""
        try:
            metering = decode_metering(self.bus.transact(
                metering_request(address, model, ser=self._next_ser()), model,
                timeout_s=timeout_s), model)
            purchase = self._purchase(device, model, timeout_s) if self.read_balance else None
            return to_meter_reading(metering, device=device.id, village=device.village,
                                    dma=device.dma, time=time, clock_tz=model.clock_tz,
                                    purchase=purchase)
        except (NoReplyError, LinkError) as exc:
            raise DeviceSilentError(str(exc)) from exc
        except (Cjt188Error, ValidationError) as exc:
            raise DeviceAnswerError(f"meter {device.id}: {exc}") from exc

    def _purchase(self, device: DeviceConfig, model: MeterModel,
                  timeout_s: float) -> PurchaseData | None:
        """The balance (DI 8105), or None when the meter cannot give it this time: the
        volume and valve state it just gave are worth sending without it."""
        request = purchase_request(device.address or "", model, ser=self._next_ser())
        try:
            return decode_purchase(self.bus.transact(request, model, timeout_s=timeout_s),
                                   model)
        except (NoReplyError, Cjt188Error) as exc:
            log.info("meter %s: no balance this time: %s", device.id, exc)
            return None

    def set_valve(self, device: DeviceConfig, open_valve: bool, *, timeout_s: float) -> ValveReply:
        model = self.model_of(device)
        request = valve_request(device.address or "", model, open_valve=open_valve,
                                ser=self._next_ser())
        try:
            reply = decode_reply(self.bus.transact(request, model, timeout_s=timeout_s), model)
        except (NoReplyError, LinkError) as exc:
            raise DeviceSilentError(str(exc)) from exc
        except Cjt188MeterError as exc:
            raise DeviceAnswerError(f"meter {device.id} refused the valve command: {exc}") \
                from exc
        except Cjt188Error as exc:
            raise DeviceAnswerError(f"meter {device.id}: {exc}") from exc
        if not isinstance(reply, ValveReply):
            raise DeviceAnswerError(f"meter {device.id} answered {type(reply).__name__}")
        return reply


class ModbusDriver:
    """Pump drives and analysers behind one pymodbus client (one TCP or RTU line)."""

    def __init__(self, client: ModbusBaseSyncClient, *,
                 profiles: Mapping[str, DeviceProfile] | None = None) -> None:
        self.client = client
        self._profiles = dict(profiles or {})

    def profile_of(self, device: DeviceConfig) -> DeviceProfile:
        name = device.model or ""
        if name not in self._profiles:
            self._profiles[name] = get_profile(name)
        return self._profiles[name]

    def read(self, device: DeviceConfig, *, timeout_s: float, time: datetime) -> Reading:
        try:
            return read_device(self.client, self.profile_of(device), device.unit_id or 0,
                               device=device.id, village=device.village, dma=device.dma,
                               time=time, timeout_s=timeout_s)
        except ModbusReadError as exc:
            if exc.no_answer:
                raise DeviceSilentError(str(exc)) from exc
            raise DeviceAnswerError(str(exc)) from exc


# --------------------------------------------------------------------------- the poller


class PollResult(StrEnum):
    OK = "ok"
    SILENT = "silent"
    BAD_ANSWER = "bad_answer"


@dataclass
class PollerStats:
    polls: int = 0
    readings: int = 0
    attempts_failed: int = 0
    silent_polls: int = 0
    bad_answers: int = 0
    offline_events: int = 0
    loop_errors: int = 0


@dataclass
class _DeviceState:
    config: DeviceConfig
    due: float
    online: bool | None = None
    silent_polls: int = 0
    conditions: frozenset[str] = field(default_factory=frozenset)


def _utc_now() -> datetime:
    return datetime.now(UTC)


# Conditions a reading shows that the bureau is told about when they start and clear.
_CONDITIONS: dict[str, tuple[Severity, Callable[[Reading], bool]]] = {
    "valve_closed": ("warning", lambda r: isinstance(r, MeterReading) and r.valve == "closed"),
    "valve_fault": ("critical", lambda r: isinstance(r, MeterReading) and r.valve == "fault"),
    "low_battery": ("warning", lambda r: isinstance(r, MeterReading) and r.battery_low),
    "tamper": ("critical", lambda r: isinstance(r, MeterReading) and r.tamper),
    "pump_fault": ("critical", lambda r: isinstance(r, PumpReading) and r.fault_code != 0),
}


class LinkPoller:
    """Polls every device of one link in turn, on schedule or on demand. Thread-safe.

    ``sink`` may be given later (``attach``), when the gateway service starts the pollers.
    """

    def __init__(self, name: str, driver: Driver, devices: Sequence[DeviceConfig],
                 sink: ReadingSink | None = None, *, defaults: PollDefaults | None = None,
                 clock: Callable[[], datetime] = _utc_now,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.driver = driver
        self.sink = sink
        self.defaults = defaults or PollDefaults()
        self.stats = PollerStats()
        self._clock = clock
        self._monotonic = monotonic
        self._lock = threading.RLock()
        start = monotonic()
        self._devices: dict[str, _DeviceState] = {}
        for device in devices:
            if device.id in self._devices:
                raise ValueError(f"device {device.id} is listed twice on link {name}")
            self._devices[device.id] = _DeviceState(device, due=start)

    def attach(self, sink: ReadingSink) -> None:
        self.sink = sink

    @property
    def device_ids(self) -> list[str]:
        return list(self._devices)

    def is_online(self, device: str) -> bool | None:
        """True, False, or None before the first poll."""
        return self._devices[device].online

    # ------------------------------------------------------------------ settings per device

    def _interval(self, device: DeviceConfig) -> float:
        return device.interval_s or self.defaults.interval_of(device.kind)

    def _timeout(self, device: DeviceConfig) -> float:
        return device.timeout_s or self.defaults.timeout_s

    def _attempts(self, device: DeviceConfig) -> int:
        retries = self.defaults.retries if device.retries is None else device.retries
        return retries + 1

    # ------------------------------------------------------------------ polling

    def poll_device(self, device_id: str, sink: ReadingSink | None = None) -> PollResult:
        """Poll one device now (with its retries); hand what it gives to the sink."""
        sink = sink or self.sink
        if sink is None:
            raise CommandError(f"poller {self.name} has no sink yet: start it first")
        state = self._devices[device_id]
        device = state.config
        with self._lock:
            self.stats.polls += 1
            state.due = self._monotonic() + self._interval(device)
            answered, reading, error = False, None, ""
            for attempt in range(1, self._attempts(device) + 1):
                try:
                    reading = self.driver.read(device, timeout_s=self._timeout(device),
                                               time=self._clock())
                    answered = True
                    break
                except DeviceSilentError as exc:
                    error = str(exc)
                except DeviceAnswerError as exc:
                    answered, error = True, str(exc)
                self.stats.attempts_failed += 1
                log.info("%s: %s attempt %d failed: %s", self.name, device.id, attempt, error)
            return self._record(sink, state, answered, reading, error)

    def _record(self, sink: ReadingSink, state: _DeviceState, answered: bool,
                reading: Reading | None, error: str) -> PollResult:
        events = self._presence_events(state, answered, error)
        if reading is not None:
            events += self._condition_events(state, reading)
            self.stats.readings += 1
            sink.put_readings([reading])
        if events:
            sink.put_events(events)
        if reading is not None:
            return PollResult.OK
        if answered:
            self.stats.bad_answers += 1
            log.warning("%s: %s answered but gave no reading: %s", self.name,
                        state.config.id, error)
            return PollResult.BAD_ANSWER
        self.stats.silent_polls += 1
        return PollResult.SILENT

    def _event(self, device: DeviceConfig, code: str, severity: Severity, active: bool,
               message: str) -> DeviceEvent:
        return DeviceEvent(device=device.id, device_kind=device.kind, time=self._clock(),
                           village=device.village, dma=device.dma, code=code,
                           severity=severity, active=active, message=message[:500])

    def _presence_events(self, state: _DeviceState, answered: bool,
                         error: str) -> list[DeviceEvent]:
        device = state.config
        if answered:
            state.silent_polls = 0
            came_back = state.online is False
            state.online = True
            if came_back:
                log.info("%s: %s is answering again", self.name, device.id)
                return [self._event(device, "offline", "info", False, "answering again")]
            return []
        state.silent_polls += 1
        if state.silent_polls < self.defaults.offline_after_polls or state.online is False:
            return []
        state.online = False
        self.stats.offline_events += 1
        attempts = self._attempts(device)
        log.warning("%s: %s offline: no answer to %d attempts (%s)", self.name, device.id,
                    attempts, error)
        return [self._event(device, "offline", "warning", True,
                            f"no answer to {attempts} attempts: {error}")]

    def _condition_events(self, state: _DeviceState, reading: Reading) -> list[DeviceEvent]:
        now = frozenset(code for code, (_, test) in _CONDITIONS.items() if test(reading))
        events = [self._event(state.config, code,
                              _CONDITIONS[code][0] if code in now else "info", code in now,
                              code.replace("_", " ") + ("" if code in now else " cleared"))
                  for code in sorted(now ^ state.conditions)]
        state.conditions = now
        return events

    def poll_due(self, stop: threading.Event | None = None) -> list[tuple[str, PollResult]]:
        """Poll every device whose time has come, most overdue first."""
        now = self._monotonic()
        due = sorted((s.due, s.config.id) for s in self._devices.values() if s.due <= now)
        results: list[tuple[str, PollResult]] = []
        if not due or self.sink is None:
            return results
        # A round of meters becomes full telemetry messages, not one message per meter.
        batch = _RoundBuffer(self.sink)
        try:
            for _, device_id in due:
                if stop is not None and stop.is_set():
                    break
                results.append((device_id, self.poll_device(device_id, batch)))
        finally:
            batch.flush()
        return results

    def next_due_in(self) -> float:
        """Seconds until the next device is due (0 if one already is)."""
        soonest = min((s.due for s in self._devices.values()), default=float("inf"))
        return max(0.0, soonest - self._monotonic())

    def run(self, stop: threading.Event, *, idle_s: float = 1.0) -> None:
        """Poll on schedule until ``stop`` is set.

        Top-level boundary of the poller thread: an unexpected error in one round is logged
        with its traceback and counted (``stats.loop_errors``), and polling goes on, so one
        device's bad data cannot silence a whole line.
        """
        log.info("%s: polling %d devices", self.name, len(self._devices))
        while not stop.is_set():
            try:
                self.poll_due(stop)
            except Exception:  # noqa: BLE001 - documented thread boundary: log, count, go on
                self.stats.loop_errors += 1
                log.exception("%s: polling round failed", self.name)
            stop.wait(min(self.next_due_in(), idle_s))

    def make_due(self, device_id: str) -> None:
        """Poll this device at the next round of ``run``."""
        self._devices[device_id].due = self._monotonic()

    # ------------------------------------------------------------------ commands

    def set_valve(self, device_id: str, open_valve: bool) -> str:
        state = self._devices[device_id]
        device = state.config
        if device.kind != "meter" or not isinstance(self.driver, MeterDriver):
            raise CommandError(f"{device_id} is a {device.kind}, it has no valve")
        wanted = "open" if open_valve else "closed"
        error = ""
        with self._lock:
            for _ in range(self._attempts(device)):
                try:
                    reply = self.driver.set_valve(device, open_valve,
                                                  timeout_s=self._timeout(device))
                except DeviceSilentError as exc:
                    error = str(exc)
                    continue
                except DeviceAnswerError as exc:
                    raise CommandError(str(exc)) from exc
                self.make_due(device_id)  # the next reading shows the bureau the new state
                if reply.status.valve != wanted:
                    command = "open" if open_valve else "close"
                    raise CommandError(f"meter {device_id} reports valve {reply.status.valve} "
                                       f"after the {command} command")
                return f"valve {wanted}"
        raise CommandError(f"meter {device_id} did not answer the valve command: {error}")


class PollerGroup:
    """Every link poller of a gateway, each on its own thread; the ``DeviceController``."""

    def __init__(self, pollers: Sequence[LinkPoller],
                 closers: Sequence[Callable[[], None]] = ()) -> None:
        self.pollers = list(pollers)
        self._closers = list(closers)  # links and clients the group owns
        self._owner: dict[str, LinkPoller] = {}
        for poller in self.pollers:
            for device in poller.device_ids:
                if device in self._owner:
                    raise ValueError(f"device {device} is on two links")
                self._owner[device] = poller
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def attach(self, sink: ReadingSink) -> None:
        """Where readings go; enough for ``poll_now`` and ``set_valve`` without the threads."""
        for poller in self.pollers:
            poller.attach(sink)

    def start(self, sink: ReadingSink | None = None) -> None:
        """Poll on schedule, one thread per link (the gateway service's ``Producer``)."""
        if sink is not None:
            self.attach(sink)
        self._stop.clear()
        for poller in self.pollers:
            thread = threading.Thread(target=poller.run, args=(self._stop,),
                                      name=f"poller-{poller.name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout_s: float = 30.0) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=timeout_s)
        self._threads.clear()
        self.close()

    def close(self) -> None:
        """Close the links and clients; a later poll opens them again."""
        for close in self._closers:
            close()

    def _poller_of(self, device: str) -> LinkPoller:
        try:
            return self._owner[device]
        except KeyError as exc:
            raise CommandError(f"no device {device} on this gateway") from exc

    def poll_now(self, device: str | None) -> str:
        """Poll one device (or every device, link by link) at once."""
        if device is not None:
            result = self._poller_of(device).poll_device(device)
            return f"{device}: {result.value}"
        counts: dict[str, int] = {}
        for poller in self.pollers:
            batch = _RoundBuffer(poller.sink) if poller.sink is not None else None
            try:
                for device_id in poller.device_ids:
                    result = poller.poll_device(device_id, batch)
                    counts[result.value] = counts.get(result.value, 0) + 1
            finally:
                if batch is not None:
                    batch.flush()
        return ", ".join(f"{count} {name}" for name, count in sorted(counts.items()))

    def set_valve(self, device: str, open_valve: bool) -> str:
        """Open or close a meter's valve; raises ``CommandError`` when it cannot be done."""
        return self._poller_of(device).set_valve(device, open_valve)


# --------------------------------------------------------------------------- from the config file

LinkSpec = Annotated[
    TcpLinkConfig | SerialLinkConfig | ModbusTcpConfig | ModbusRtuConfig,
    Field(discriminator="type"),
]
_LINK_SPEC: TypeAdapter[TcpLinkConfig | SerialLinkConfig | ModbusTcpConfig | ModbusRtuConfig] = \
    TypeAdapter(LinkSpec)


class PollerConfigError(ValueError):
    """Devices and links in the gateway configuration that the pollers cannot use."""


def build_pollers(
    *,
    village: str,
    dma: str | None,
    devices: Sequence[Mapping[str, Any]],
    links: Sequence[Mapping[str, Any]],
    defaults: PollDefaults | None = None,
) -> PollerGroup:
    """Links, drivers and pollers for the ``devices`` and ``links`` of a gateway config.

    Links: ``type`` serial (a local port or pyserial URL) or tcp (a serial-to-TCP
    converter) carry CJ/T 188 meters; modbus_tcp and modbus_rtu carry pump drives and
    analysers. Devices take the gateway's village and DMA unless they name their own.
    """
    try:
        specs = [_LINK_SPEC.validate_python(dict(link)) for link in links]
        # Keys left empty in the file (None, "") take the gateway's defaults.
        configs = [DeviceConfig.model_validate(
            {"village": village, "dma": dma,
             **{key: value for key, value in entry.items() if value not in (None, "")}})
            for entry in devices]
    except ValidationError as exc:
        raise PollerConfigError(f"gateway devices or links are not valid: {exc}") from exc
    names = [spec.name for spec in specs]
    if "" in names or len(set(names)) != len(names):
        raise PollerConfigError(f"every link needs a name of its own: {names}")
    unknown = sorted({c.link for c in configs} - set(names))
    if unknown:
        raise PollerConfigError(f"devices name links that are not configured: {unknown}")
    _check_models(configs)
    pollers: list[LinkPoller] = []
    closers: list[Callable[[], None]] = []
    for spec in specs:
        members = [c for c in configs if c.link == spec.name]
        driver = _driver(spec, members, defaults or PollDefaults(), closers)
        pollers.append(LinkPoller(spec.name, driver, members, defaults=defaults))
    return PollerGroup(pollers, closers)


def _driver(spec: TcpLinkConfig | SerialLinkConfig | ModbusTcpConfig | ModbusRtuConfig,
            members: list[DeviceConfig], defaults: PollDefaults,
            closers: list[Callable[[], None]]) -> Driver:
    modbus = isinstance(spec, ModbusTcpConfig | ModbusRtuConfig)
    wrong = [c.id for c in members if (c.kind == "meter") == modbus]
    if wrong:
        raise PollerConfigError(f"link {spec.name} ({spec.type}) cannot carry {wrong}")
    if isinstance(spec, ModbusTcpConfig | ModbusRtuConfig):
        client = make_client(spec)
        closers.append(client.close)
        return ModbusDriver(client)
    link = make_link(spec)
    closers.append(link.close)
    return MeterDriver(MeterBus(link), read_balance=defaults.read_balance)


def _check_models(configs: Sequence[DeviceConfig]) -> None:
    """Every meter model and Modbus profile a device names must exist before polling starts."""
    for config in configs:
        try:
            if config.kind == "meter":
                get_model(config.model or "default")
            else:
                get_profile(config.model or "")
        except (MeterModelError, ModbusProfileError) as exc:
            raise PollerConfigError(f"device {config.id}: {exc}") from exc
