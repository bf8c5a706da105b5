"""Collector throughput: published -> queryable in InfluxDB, against two baselines.

Run: ``.venv/bin/python benchmarks/collector_throughput.py [--readings N] [--skip-nodered]``

On one Mosquitto and one InfluxDB started here (temporary folders), in one run:

- InfluxDB's own write rate for the same points (line protocol, batches of 5,000): the limit.
- (a) the collector, one reading per message at QoS 1;
- (b) the collector, gateway batches of 60 readings per message;
- the Node-RED flow a bureau would otherwise build (mqtt in -> json -> function -> join ->
  influxdb batch, from npm's node-red and node-red-contrib-influxdb), fed the messages of (a).

A rate is readings divided by the time from the first publish until a count query in
InfluxDB returns them all. The collector's peak RSS is sampled with psutil. Targets (issue):
(a) >= 1.5x Node-RED, (b) >= 60% of InfluxDB's own rate, collector memory <= 150 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psutil

from common.contract import Channel, MeterReading, TelemetryMessage, topic
from common.influx import InfluxClient
from common.localservices import InfluxDB, Mosquitto, free_port
from common.schema import reading_point
from common.settings import InfluxSettings

REPO = Path(__file__).resolve().parents[1]
NODERED = REPO / "benchmarks" / "nodered"
GATEWAYS = 20


def make_messages(readings: int, per_message: int) -> list[tuple[str, bytes, TelemetryMessage]]:
    """Meter readings with unique (device, time) so counts are exact; 20 gateways."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=12)
    messages, seqs = [], [0] * GATEWAYS
    for first in range(0, readings, per_message):
        g = (first // per_message) % GATEWAYS
        gateway = f"gw-b{g:03d}"
        batch = [
            MeterReading(device=f"7833{(first + i) % 3000:010d}", village=f"v{g:03d}",
                         dma=f"dma-v{g:03d}", time=start + timedelta(seconds=(first + i) // 3000),
                         volume_m3=100 + (first + i) * 0.01, balance_yuan=42.5, valve="open")
            for i in range(min(per_message, readings - first))
        ]
        message = TelemetryMessage(gateway=gateway, seq=seqs[g], sent_at=start, readings=batch)
        seqs[g] += 1
        messages.append((topic(gateway, Channel.TELEMETRY), message.model_dump_json().encode(),
                         message))
    return messages


def wait_count(influx: InfluxClient, expected: int, timeout_s: float = 600) -> float:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if influx.count("meter", "volume_m3") >= expected:
            return time.monotonic()
        time.sleep(0.1)
    raise TimeoutError(f"InfluxDB never reached {expected} points")


def publish_all(port: int, messages: list[tuple[str, bytes, TelemetryMessage]],
                client_id: str) -> None:
    """Publish with Debian's mosquitto_pub (C, ~50k QoS 1 messages/s), one per gateway.

    A Python paho publisher tops out near 6k messages/s here, below what the consumers can
    take, so it would measure itself. ``-l`` sends each stdin line as one message.
    """
    by_topic: dict[str, list[bytes]] = {}
    for name, payload, _ in messages:
        by_topic.setdefault(name, []).append(payload)
    publishers = [
        subprocess.Popen(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-q", "1",
                          "-M", "1000", "-V", "5", "-i", f"{client_id}-{n}", "-t", name, "-l"],
                         stdin=subprocess.PIPE)
        for n, name in enumerate(by_topic)
    ]
    writers = [threading.Thread(target=_feed, args=(p, payloads))
               for p, payloads in zip(publishers, by_topic.values(), strict=True)]
    for writer in writers:
        writer.start()
    for writer, publisher in zip(writers, publishers, strict=True):
        writer.join()
        if publisher.wait(300) != 0:
            raise RuntimeError("mosquitto_pub failed")


def _feed(publisher: subprocess.Popen, payloads: list[bytes]) -> None:
    assert publisher.stdin is not None
    publisher.stdin.write(b"\n".join(payloads) + b"\n")
    publisher.stdin.close()


def influx_limit(url: str, messages: list, total: int) -> float:
    settings = InfluxSettings(url=url, database="bench_influx")
    with InfluxClient(settings) as influx:
        influx.ensure_database()
        lines = [reading_point(r, m.gateway).to_line() for _, _, m in messages for r in m.readings]
        started = time.monotonic()
        for first in range(0, len(lines), 5000):
            influx.write_lines(lines[first:first + 5000])
        return total / (wait_count(influx, total) - started)


class PeakRss:
    def __init__(self, pid: int) -> None:
        self.peak = 0
        self._process = psutil.Process(pid)
        self._stop = threading.Event()
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            try:
                self.peak = max(self.peak, self._process.memory_info().rss)
            except psutil.NoSuchProcess:
                return

    def stop(self) -> int:
        self._stop.set()
        try:
            times = self._process.cpu_times()
            self.cpu_s = times.user + times.system
        except psutil.NoSuchProcess:
            self.cpu_s = float("nan")
        return self.peak


def run_consumer(start: Callable[[], subprocess.Popen], ready: Callable[[], bool],
                 port: int, url: str, database: str, messages: list, total: int,
                 client_id: str) -> tuple[float, int]:
    process = start()
    try:
        deadline = time.monotonic() + 60
        while not ready():
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"consumer for {database} did not start")
            time.sleep(0.2)
        time.sleep(1.0)  # subscriptions in place
        rss = PeakRss(process.pid)
        with InfluxClient(InfluxSettings(url=url, database=database)) as influx:
            started = time.monotonic()
            publish_all(port, messages, client_id)
            elapsed = wait_count(influx, total) - started
        peak = rss.stop()
        sys.stdout.write(f"  {database}: {elapsed:.1f} s wall, consumer CPU {rss.cpu_s:.1f} s\n")
        return total / elapsed, peak
    finally:
        process.terminate()
        process.wait(30)


def collector(work: Path, port: int, url: str, database: str):
    health = free_port()
    env = os.environ | {
        "RURALWATER_MQTT__PORT": str(port), "RURALWATER_INFLUX__URL": url,
        "RURALWATER_INFLUX__DATABASE": database, "RURALWATER_LOG_LEVEL": "WARNING",
        "RURALWATER_COLLECTOR__DATA_DIR": str(work / database),
        "RURALWATER_COLLECTOR__HEALTH_PORT": str(health),
        "RURALWATER_COLLECTOR__CLIENT_ID": f"bench-{database}",
    }

    def start() -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "collector"], cwd=REPO, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def ready() -> bool:
        try:
            return bool(httpx.get(f"http://127.0.0.1:{health}/health", timeout=1)
                        .json().get("mqtt_connected"))
        except (httpx.HTTPError, ValueError):
            return False

    return start, ready


def nodered(work: Path, port: int, influx_port: int, database: str):
    if not (NODERED / "node_modules" / "node-red").exists():
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent"], cwd=NODERED,
                       check=True)
    InfluxClient(InfluxSettings(url=f"http://127.0.0.1:{influx_port}",
                                database=database)).ensure_database()
    user_dir = work / "nodered"
    user_dir.mkdir()
    flow = (NODERED / "flow.template.json").read_text()
    for key, value in (("@MQTT_PORT@", port), ("@INFLUX_PORT@", influx_port),
                       ("@DATABASE@", database)):
        flow = flow.replace(key, str(value))
    (user_dir / "flows.json").write_text(flow)
    http_port = free_port()

    def start() -> subprocess.Popen:
        log = (work / "nodered.log").open("w")
        return subprocess.Popen(
            ["node", str(NODERED / "node_modules" / "node-red" / "red.js"), "--userDir",
             str(user_dir), "--port", str(http_port), "flows.json"],
            stdout=log, stderr=subprocess.STDOUT)

    def ready() -> bool:
        return "Connected to broker" in (work / "nodered.log").read_text()

    return start, ready


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readings", type=int, default=60_000)
    parser.add_argument("--skip-nodered", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rw-bench-"))
    broker, influxdb = Mosquitto(work / "mosquitto"), InfluxDB(work / "influxdb")
    broker.start()
    influxdb.start()
    total = args.readings
    try:
        single = make_messages(total, 1)
        batched = make_messages(total, 60)
        results: dict[str, float] = {}
        memory: dict[str, int] = {}
        results["influxdb"] = influx_limit(influxdb.url, batched, total)
        for label, messages in (("single", single), ("batched", batched)):
            start, ready = collector(work, broker.port, influxdb.url, f"bench_{label}")
            results[label], memory[label] = run_consumer(
                start, ready, broker.port, influxdb.url, f"bench_{label}", messages, total,
                f"pub-{label}")
        if not args.skip_nodered and shutil.which("node"):
            start, ready = nodered(work, broker.port, influxdb.port, "bench_nodered")
            results["nodered"], memory["nodered"] = run_consumer(
                start, ready, broker.port, influxdb.url, "bench_nodered", single, total,
                "pub-nodered")
        report(total, results, memory)
    finally:
        broker.stop()
        influxdb.stop()
        shutil.rmtree(work, ignore_errors=True)


def report(total: int, results: dict[str, float], memory: dict[str, int]) -> None:
    out = sys.stdout.write
    out(f"\n{total} meter readings per variant\n\n")
    out(f"{'variant':<44}{'readings/s':>12}{'peak RSS MB':>14}\n")
    names = {"influxdb": "InfluxDB own batch writes (the limit)",
             "single": "(a) collector, 1 reading per message",
             "batched": "(b) collector, 60 readings per message",
             "nodered": "Node-RED flow, 1 reading per message"}
    for key, name in names.items():
        if key in results:
            rss = f"{memory[key] / 2**20:.0f}" if key in memory else "-"
            out(f"{name:<44}{results[key]:>12,.0f}{rss:>14}\n")
    out("\n")
    checks = []
    if "nodered" in results:
        checks.append(("(a) / Node-RED", results["single"] / results["nodered"], 1.5, ">="))
    checks.append(("(b) / InfluxDB limit", results["batched"] / results["influxdb"], 0.6, ">="))
    peak = max(memory["single"], memory["batched"]) / 2**20
    checks.append(("collector peak RSS MB", peak, 150, "<="))
    for name, value, target, sense in checks:
        ok = value >= target if sense == ">=" else value <= target
        out(f"{name:<28}{value:>8.2f}  target {sense} {target:<6} {'PASS' if ok else 'FAIL'}\n")
    out(json.dumps({"readings": total, "rates": results,
                    "peak_rss_mb": {k: round(v / 2**20, 1) for k, v in memory.items()}}) + "\n")


if __name__ == "__main__":
    main()
