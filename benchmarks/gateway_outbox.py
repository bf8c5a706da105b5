"""Gateway outbox cost: readings/s through the outbox against paho publishing them directly.

Run: ``.venv/bin/python benchmarks/gateway_outbox.py [--readings N] [--repeat R]``.

On one Mosquitto started here (temporary folder), in one run, for the same meter readings
(built before timing starts):

- **limit**: paho alone, no outbox. Readings are grouped 60 to a TelemetryMessage, serialised
  and published at QoS 1 with the same in-flight window; timed until the last PUBACK.
- **outbox**: the gateway's uplink (``gateway.service.GatewayService``): a producer thread
  puts the readings in poll cycles of ``--cycle`` readings (one SQLite transaction each),
  the uplink publishes from the outbox and deletes each row on its PUBACK; timed from the first
  put until the outbox is empty. The replay rate limit is off here (it is a deliberate
  throttle); run once with ``synchronous=NORMAL`` (the default: survives a kill) and once
  with ``FULL`` (survives a power cut).

After a warm-up round of each (not counted), variants run round-robin ``--repeat`` times
(alternating which goes first); the median is reported. Everything runs in one Python
process, as in a gateway, so the outbox's SQLite work and its publisher thread compete with
serialisation for the GIL: the cost is CPU, not disk. Target (issue): the outbox costs no
more than 30% of the limit, i.e. outbox rate >= 0.7 x paho's.
Exit status 0 when the default (NORMAL) outbox meets the target, 1 when not.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from common.contract import Channel, MeterReading, TelemetryMessage, topic
from common.localservices import Mosquitto
from common.settings import GatewaySettings, MqttSettings
from gateway.config import GatewayConfig
from gateway.service import GatewayService
from gateway.uplink import build_mqtt_client

log = logging.getLogger("benchmarks.gateway_outbox")
TARGET_COST = 0.30


def make_readings(count: int) -> list[MeterReading]:
    origin = datetime.now(UTC) - timedelta(hours=1)
    return [MeterReading(device=f"m-{i % 600:04d}", time=origin + timedelta(seconds=i // 600),
                         village="v01", dma="dma-v01", volume_m3=i * 0.001, valve="open",
                         balance_yuan=42.5)
            for i in range(count)]


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.01)


def run_paho(port: int, readings: list[MeterReading], window: int, run: int) -> float:
    """The limit: serialise 60 a message and publish at QoS 1, no outbox."""
    gateway = f"gw-paho{run}"
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=gateway, protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(window)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    wait_until(client.is_connected, 10, "paho to connect")
    name = topic(gateway, Channel.TELEMETRY)
    started = time.perf_counter()
    infos = []
    for seq, index in enumerate(range(0, len(readings), 60)):
        message = TelemetryMessage(gateway=gateway, seq=seq, sent_at=datetime.now(UTC),
                                   readings=readings[index:index + 60])
        infos.append(client.publish(name, message.model_dump_json().encode(), qos=1))
    for info in infos:
        info.wait_for_publish(120)
    elapsed = time.perf_counter() - started
    client.disconnect()
    client.loop_stop()
    return len(readings) / elapsed


def run_outbox(port: int, readings: list[MeterReading], window: int, cycle: int, run: int,
               data_dir: Path, synchronous: str) -> float:
    # One gateway (and outbox file) per mode across rounds: after the warm-up round the file
    # reuses its freed pages, as a gateway's outbox does after its first hours.
    gateway = f"gw-outbox-{synchronous.lower()}"
    mqtt_settings = MqttSettings(port=port)
    settings = GatewaySettings(data_dir=data_dir / gateway, max_inflight=window,
                               replay_rate_msgs_s=0,
                               outbox_synchronous=synchronous)  # type: ignore[arg-type]
    service = GatewayService(config=GatewayConfig(gateway=gateway, village="v01"),
                             settings=settings, mqtt_settings=mqtt_settings,
                             mqtt_client=build_mqtt_client(mqtt_settings, gateway))
    service.start()
    try:
        if not service.uplink.wait_connected(10):
            raise TimeoutError("the uplink did not connect")
        started = time.perf_counter()

        def produce() -> None:
            for index in range(0, len(readings), cycle):
                service.outbox.put_readings(readings[index:index + cycle])

        producer = threading.Thread(target=produce)
        producer.start()
        producer.join()
        wait_until(lambda: service.outbox.waiting == 0, 300, "an empty outbox")
        elapsed = time.perf_counter() - started
    finally:
        service.stop()
    return len(readings) / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--readings", type=int, default=120_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--window", type=int, default=GatewaySettings().max_inflight,
                        help="QoS 1 messages in flight, both variants")
    parser.add_argument("--cycle", type=int, default=600, help="readings per put (poll cycle)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    readings = make_readings(args.readings)
    rates: dict[str, list[float]] = {"paho": [], "NORMAL": [], "FULL": []}
    with tempfile.TemporaryDirectory(prefix="gw-outbox-bench-") as folder:
        broker = Mosquitto(Path(folder) / "mosquitto")
        broker.start()
        try:
            for run in range(-1, args.repeat):  # round -1 warms up and is not counted
                # Alternate which variant goes first, so a drift in machine load is shared.
                order = ["paho", "NORMAL", "FULL"] if run % 2 == 0 else ["FULL", "NORMAL", "paho"]
                for variant in order:
                    rate = (run_paho(broker.port, readings, args.window, run)
                            if variant == "paho"
                            else run_outbox(broker.port, readings, args.window, args.cycle, run,
                                            Path(folder), variant))
                    if run >= 0:
                        rates[variant].append(rate)
        finally:
            broker.stop()
    limit = statistics.median(rates["paho"])
    out = sys.stdout.write  # CLI output of a script
    out(f"{args.readings} readings, 60 per message, window {args.window}, "
        f"put in cycles of {args.cycle}, median of {args.repeat}\n")
    out(f"{'variant':<34}{'readings/s':>12}{'of limit':>10}\n")
    out(f"{'paho, no outbox (limit)':<34}{limit:>12,.0f}{1.0:>10.0%}\n")
    verdict = True
    for mode in ("NORMAL", "FULL"):
        rate = statistics.median(rates[mode])
        cost = 1 - rate / limit
        label = f"outbox, synchronous={mode}"
        out(f"{label:<34}{rate:>12,.0f}{rate / limit:>10.0%}   cost {cost:.0%}\n")
        if mode == "NORMAL":
            verdict = cost <= TARGET_COST
    out(f"ratio outbox/paho = {statistics.median(rates['NORMAL']) / limit:.2f}; target: cost "
        f"<= {TARGET_COST:.0%}: {'PASS' if verdict else 'FAIL'}\n")
    return 0 if verdict else 1


if __name__ == "__main__":
    sys.exit(main())
