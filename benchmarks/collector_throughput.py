"""Collector throughput: published -> queryable in InfluxDB, against two baselines.

Run: ``.venv/bin/python benchmarks/collector_throughput.py [--readings N] [--repeat R]
[--skip-nodered]`` (``--help`` for the rest). Method and recorded results: benchmarks/README.md.

On one Mosquitto and one InfluxDB started here (temporary folders), in one run:

- InfluxDB's own write rate for the same points (line protocol POSTed in batches of 5,000
  with ``common.influx.InfluxClient``): the limit.
- (a) the collector (``python -m collector``), one reading per message at QoS 1;
- (b) the collector, gateway batches of 60 readings per message;
- the Node-RED flow a bureau would otherwise build (mqtt in QoS 1 -> json -> function ->
  join -> influxdb batch, from npm's node-red and node-red-contrib-influxdb), fed the same
  messages as (a) and as (b).

A rate is readings divided by the time from the first publish until a count query in
InfluxDB returns them all. Each consumer is warmed up first (one reading published until it
is queryable), so start-up and subscription are not timed. Variants run round-robin
``--repeat`` times, each on a fresh database; the table shows the median. Peak RSS of the
consumer process is sampled with psutil every 50 ms. Targets (issue): (a) >= 1.5x Node-RED
on single readings, (b) >= 60% of InfluxDB's own rate, collector peak RSS <= 150 MB.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import httpx
import paho.mqtt.client as mqtt
import psutil
from _revision import code_revision
from paho.mqtt.enums import CallbackAPIVersion

from common.contract import Channel, MeterReading, Reading, TelemetryMessage, topic
from common.influx import InfluxClient, InfluxError
from common.localservices import InfluxDB, Mosquitto, ServiceError, free_port
from common.schema import reading_point
from common.settings import InfluxSettings

log = logging.getLogger("benchmarks.collector_throughput")

REPO = Path(__file__).resolve().parents[1]
MEASURED = ("collector", "common")  # code_revision marks changes under these
NODERED = REPO / "benchmarks" / "nodered"
GATEWAYS = 20
DEVICES_PER_GATEWAY = 150  # 3,000 meters: about ten villages' worth
INFLUX_BATCH = 5000
PUBLISH_INFLIGHT = 1000  # QoS 1 messages each publisher may have unacknowledged
POLL_MIN_S = 0.02
POLL_MAX_S = 0.5
WARMUP_GATEWAY = "gw-warmup"
WARMUP_TIME = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)

TARGET_VS_NODERED = 1.5
TARGET_VS_INFLUX = 0.6
TARGET_RSS_MB = 150.0


class BenchmarkError(RuntimeError):
    """A consumer or service did not behave well enough to be measured."""


# --------------------------------------------------------------------------- workload


@dataclass(frozen=True)
class Workload:
    """The same readings, grouped ``per_message`` to a message, as (topic, payload) pairs."""

    label: str
    per_message: int
    messages: list[tuple[str, bytes]]
    readings: int


def make_readings(total: int) -> list[tuple[str, MeterReading]]:
    """(gateway, reading) for meter readings with unique (device, time), so counts are exact.

    Each meter belongs to one gateway and village; times lie 12 h back, well inside the
    collector's accepted window.
    """
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=12)
    meters = GATEWAYS * DEVICES_PER_GATEWAY
    out = []
    for k in range(total):
        meter = k % meters
        g = meter // DEVICES_PER_GATEWAY
        out.append((f"gw-b{g:03d}", MeterReading(
            device=f"7833{meter:010d}", village=f"v{g:03d}", dma=f"dma-v{g:03d}",
            time=start + timedelta(seconds=k // meters), volume_m3=100 + k * 0.01,
            balance_yuan=42.5, valve="open")))
    return out


def make_workload(label: str, readings: list[tuple[str, MeterReading]],
                  per_message: int) -> Workload:
    """Valid TelemetryMessages, per-gateway sequence numbers, interleaved across gateways."""
    by_gateway: dict[str, list[Reading]] = {}
    for gateway, reading in readings:
        by_gateway.setdefault(gateway, []).append(reading)
    sent_at = datetime.now(UTC)
    queues: list[list[tuple[str, bytes]]] = []
    for gateway, items in by_gateway.items():
        queues.append([
            (topic(gateway, Channel.TELEMETRY),
             TelemetryMessage(gateway=gateway, seq=seq, sent_at=sent_at,
                              readings=items[first:first + per_message])
             .model_dump_json().encode())
            for seq, first in enumerate(range(0, len(items), per_message), start=1)
        ])
    longest = max(len(q) for q in queues)
    messages = [q[i] for i in range(longest) for q in queues if i < len(q)]
    return Workload(label, per_message, messages, len(readings))


def warmup_payload(seq: int) -> bytes:
    """One reading, always the same point: re-publishing it overwrites, so it counts once."""
    reading = MeterReading(device="bench-warmup", village="bench", time=WARMUP_TIME,
                           volume_m3=1.0, valve="open")
    return TelemetryMessage(gateway=WARMUP_GATEWAY, seq=seq, sent_at=datetime.now(UTC),
                            readings=[reading]).model_dump_json().encode()


# --------------------------------------------------------------------------- measuring


def count_points(influx: InfluxClient) -> int:
    return influx.count("meter", "volume_m3")


@dataclass
class Finish:
    at: float
    count: int
    complete: bool


def wait_for_count(influx: InfluxClient, expected: int, stall_s: float) -> Finish:
    """Poll until ``expected`` points are queryable, or the count stops rising for stall_s.

    A count over 100k points costs InfluxDB ~30 ms of CPU, so polls are sparse while far
    from the end (estimated from the rate so far) and dense close to it.
    """
    began = time.monotonic()
    first = last = -1
    last_change = began
    while True:
        count = count_points(influx)
        now = time.monotonic()
        if count >= expected:
            return Finish(now, count, True)
        if first < 0:
            first = count
        if count != last:
            last, last_change = count, now
        elif now - last_change > stall_s:
            log.warning("count stuck at %d of %d for %.0f s", count, expected, stall_s)
            return Finish(last_change, count, False)
        rate = (count - first) / (now - began) if now > began else 0.0
        remaining = (expected - count) / rate if rate > 0 else 0.2
        time.sleep(min(max(remaining / 2, POLL_MIN_S), POLL_MAX_S))


class ResourceSampler:
    """Peak RSS of the largest of some processes, sampled every 50 ms, and their CPU time."""

    def __init__(self, pids: Sequence[int]) -> None:
        self.peak_rss = 0
        self._processes = [psutil.Process(pid) for pid in pids]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while True:
            try:
                rss = max(process.memory_info().rss for process in self._processes)
            except psutil.NoSuchProcess:
                return
            self.peak_rss = max(self.peak_rss, rss)
            if self._stop.wait(0.05):
                return

    def cpu_s(self) -> float:
        return sum(float(t.user + t.system) for t in (p.cpu_times() for p in self._processes))

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak_rss


def publish_all(port: int, workload: Workload, client_prefix: str) -> float:
    """Publish every message at QoS 1; one mosquitto_pub per gateway topic. Returns seconds.

    Debian's mosquitto_pub (C) keeps PUBLISH_INFLIGHT messages unacknowledged at most and
    sends each stdin line (``-l``) as a message, about 45k QoS 1 messages/s here. A paho
    publisher in Python measured about 5.6k/s on the same machine: slower than the consumers,
    so it would have measured itself.
    """
    by_topic: dict[str, list[bytes]] = {}
    for name, payload in workload.messages:
        by_topic.setdefault(name, []).append(payload)
    started = time.monotonic()
    publishers: list[subprocess.Popen[bytes]] = []
    try:
        for n, name in enumerate(by_topic):
            publishers.append(subprocess.Popen(
                ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-V", "5", "-q", "1",
                 "-M", str(PUBLISH_INFLIGHT), "-i", f"{client_prefix}-{n}", "-t", name, "-l"],
                stdin=subprocess.PIPE))
        feeders = [threading.Thread(target=_feed, args=(publisher, payloads))
                   for publisher, payloads in zip(publishers, by_topic.values(), strict=True)]
        for feeder in feeders:
            feeder.start()
        for feeder in feeders:
            feeder.join()
        for publisher in publishers:
            if publisher.wait(600) != 0:
                raise BenchmarkError(f"mosquitto_pub exited with {publisher.returncode}")
    finally:
        for publisher in publishers:
            if publisher.poll() is None:
                publisher.kill()
                publisher.wait()
    return time.monotonic() - started


def _feed(publisher: subprocess.Popen[bytes], payloads: list[bytes]) -> None:
    if publisher.stdin is None:
        raise BenchmarkError("mosquitto_pub started without a stdin pipe")
    with publisher.stdin:
        publisher.stdin.write(b"\n".join(payloads) + b"\n")


def discard_session(port: int, client_id: str) -> None:
    """Connect as a stopped consumer with a clean start and leave: the broker drops its
    persistent session, which would otherwise queue every later run's messages."""
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=mqtt.MQTTv5)
    connected = threading.Event()
    client.on_connect = lambda *_: connected.set()
    client.connect("127.0.0.1", port, clean_start=True)
    client.loop_start()
    try:
        if not connected.wait(10):
            raise BenchmarkError(f"could not connect as {client_id} to drop its session")
    finally:
        client.disconnect()
        client.loop_stop()


# --------------------------------------------------------------------------- consumers


class Consumer(Protocol):
    name: str

    @property
    def client_ids(self) -> list[str]: ...

    def start(self) -> list[subprocess.Popen[bytes]]: ...

    def connected(self) -> bool: ...

    def stats(self) -> dict[str, Any]: ...


@dataclass
class CollectorGroup:
    """``python -m collector`` configured by RURALWATER_* variables, as in production.

    With ``members`` > 1 the collectors split the stream as a shared subscription group.
    """

    work: Path
    mqtt_port: int
    influx_url: str
    database: str
    members: int = 1
    name: str = "collector"
    health_ports: list[int] = field(default_factory=list)

    @property
    def client_ids(self) -> list[str]:
        return [f"bench-{self.database}-{n}" for n in range(self.members)]

    def start(self) -> list[subprocess.Popen[bytes]]:
        self.health_ports = [free_port() for _ in range(self.members)]
        return [self._start_one(n) for n in range(self.members)]

    def _start_one(self, n: int) -> subprocess.Popen[bytes]:
        env = os.environ | {
            "RURALWATER_MQTT__HOST": "127.0.0.1",
            "RURALWATER_MQTT__PORT": str(self.mqtt_port),
            "RURALWATER_INFLUX__URL": self.influx_url,
            "RURALWATER_INFLUX__DATABASE": self.database,
            "RURALWATER_LOG_LEVEL": "WARNING",
            "RURALWATER_COLLECTOR__DATA_DIR": str(self.work / f"{self.database}-{n}"),
            "RURALWATER_COLLECTOR__HEALTH_PORT": str(self.health_ports[n]),
            "RURALWATER_COLLECTOR__CLIENT_ID": self.client_ids[n],
            "RURALWATER_COLLECTOR__SHARE_GROUP": "bench" if self.members > 1 else "",
        }
        with (self.work / f"{self.database}-{n}.log").open("wb") as out:
            return subprocess.Popen([sys.executable, "-m", "collector"], cwd=REPO, env=env,
                                    stdout=out, stderr=subprocess.STDOUT)

    @staticmethod
    def _health(port: int) -> dict[str, Any]:
        try:
            answer = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
            data = answer.json()
        except (httpx.HTTPError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def connected(self) -> bool:
        return all(self._health(port).get("mqtt_connected") for port in self.health_ports)

    def stats(self) -> dict[str, Any]:
        """Counters that must stay 0 for a fair run (nothing refused, nothing spooled)."""
        keys = ("invalid_messages", "invalid_readings", "dead_letters", "rejected_points",
                "write_failures", "spooled_batches", "handler_errors")
        totals: dict[str, Any] = {}
        for port in self.health_ports:
            health = self._health(port)
            for key in keys:
                if isinstance(health.get(key), int):
                    totals[key] = totals.get(key, 0) + health[key]
        return totals


@dataclass
class NodeRedProcess:
    """Node-RED, headless, own user dir, with the flow in benchmarks/nodered/."""

    work: Path
    mqtt_port: int
    influx_port: int
    database: str
    name: str = "nodered"

    @property
    def client_id(self) -> str:
        return f"nodered-{self.database}"

    @property
    def client_ids(self) -> list[str]:
        return [self.client_id]

    @property
    def _log(self) -> Path:
        return self.work / f"{self.database}.log"

    def start(self) -> list[subprocess.Popen[bytes]]:
        user_dir = self.work / self.database
        user_dir.mkdir()
        flow = (NODERED / "flow.template.json").read_text()
        for key, value in (("@MQTT_PORT@", self.mqtt_port), ("@INFLUX_PORT@", self.influx_port),
                           ("@DATABASE@", self.database), ("@CLIENT_ID@", self.client_id)):
            flow = flow.replace(key, str(value))
        (user_dir / "flows.json").write_text(flow)
        settings = NODERED / "settings.js"
        with self._log.open("wb") as out:
            return [subprocess.Popen(
                ["node", str(NODERED / "node_modules" / "node-red" / "red.js"),
                 "--settings", str(settings), "--userDir", str(user_dir),
                 "--port", str(free_port()), "flows.json"],
                stdout=out, stderr=subprocess.STDOUT, cwd=user_dir)]

    def connected(self) -> bool:
        return "Connected to broker" in self._log.read_text(errors="replace")

    def stats(self) -> dict[str, Any]:
        errors = [line for line in self._log.read_text(errors="replace").splitlines()
                  if "[error]" in line]
        return {"log_errors": len(errors)}


def install_nodered() -> None:
    """``npm ci`` from the committed lock file, once; node_modules is ignored by git."""
    if (NODERED / "node_modules" / "node-red" / "red.js").exists():
        return
    sys.stdout.write("installing Node-RED with npm ci (once)...\n")
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=NODERED,
                   check=True)


# --------------------------------------------------------------------------- runs


@dataclass
class Run:
    variant: str
    round_no: int
    readings: int
    seconds: float
    complete: bool
    publish_s: float | None = None
    peak_rss: int | None = None
    cpu_s: float | None = None
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.readings / self.seconds if self.seconds > 0 else 0.0


def influx_limit(url: str, database: str, lines: list[str], stall_s: float,
                 round_no: int) -> Run:
    """The same points POSTed straight to InfluxDB, INFLUX_BATCH lines per request."""
    with InfluxClient(InfluxSettings(url=url, database=database, timeout_s=60)) as influx:
        influx.ensure_database()
        started = time.monotonic()
        for first in range(0, len(lines), INFLUX_BATCH):
            influx.write_lines(lines[first:first + INFLUX_BATCH])
        finish = wait_for_count(influx, len(lines), stall_s)
    return Run("influxdb", round_no, finish.count, finish.at - started, finish.complete)


def wait_until_consuming(consumer: Consumer, processes: list[subprocess.Popen[bytes]],
                         control: mqtt.Client, influx: InfluxClient, timeout_s: float) -> None:
    """Connected, subscribed and writing: the warm-up reading is queryable."""
    deadline = time.monotonic() + timeout_s
    seq = 0
    while time.monotonic() < deadline:
        for process in processes:
            if process.poll() is not None:
                raise BenchmarkError(f"{consumer.name} exited with {process.returncode}")
        if consumer.connected():
            seq += 1
            control.publish(topic(WARMUP_GATEWAY, Channel.TELEMETRY), warmup_payload(seq),
                            qos=1).wait_for_publish(10)
            for _ in range(20):
                if count_points(influx) >= 1:
                    return
                time.sleep(0.1)
        else:
            time.sleep(0.2)
    raise BenchmarkError(f"{consumer.name} {consumer.client_ids} did not start consuming")


def stop_processes(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_consumer(variant: str, round_no: int, consumer: Consumer, broker_port: int,
                 influx_url: str, database: str, workload: Workload, control: mqtt.Client,
                 stall_s: float) -> Run:
    with InfluxClient(InfluxSettings(url=influx_url, database=database)) as influx:
        influx.ensure_database()
        processes = consumer.start()
        try:
            sampler = ResourceSampler([process.pid for process in processes])
            wait_until_consuming(consumer, processes, control, influx, timeout_s=90)
            cpu_before = sampler.cpu_s()
            started = time.monotonic()
            publish_s = publish_all(broker_port, workload, f"pub-{database}")
            finish = wait_for_count(influx, workload.readings + 1, stall_s)
            cpu = sampler.cpu_s() - cpu_before
            stats = consumer.stats()
            peak = sampler.stop()
        finally:
            stop_processes(processes)
    for client_id in consumer.client_ids:
        discard_session(broker_port, client_id)
    return Run(variant, round_no, finish.count - 1, finish.at - started, finish.complete,
               publish_s, peak, cpu, stats)


@dataclass(frozen=True)
class Plan:
    readings: int
    per_message: int
    repeat: int
    nodered: bool
    stall_s: float
    collectors: int = 1
    json_out: Path | None = None


def run_all(plan: Plan, work: Path, broker: Mosquitto, influxdb: InfluxDB,
            control: mqtt.Client) -> list[Run]:
    readings = make_readings(plan.readings)
    lines = [reading_point(reading, gateway).to_line() for gateway, reading in readings]
    single = make_workload("single", readings, 1)
    batched = make_workload("batched", readings, plan.per_message)
    del readings
    runs: list[Run] = []
    for round_no in range(1, plan.repeat + 1):
        sys.stdout.write(f"round {round_no} of {plan.repeat}\n")
        runs.append(influx_limit(influxdb.url, f"bench_influx_r{round_no}", lines, plan.stall_s,
                                 round_no))
        _progress(runs[-1])
        variants: list[tuple[str, str, Workload]] = [
            ("collector_single", "collector", single), ("collector_batched", "collector", batched)]
        if plan.nodered:
            variants += [("nodered_single", "nodered", single),
                         ("nodered_batched", "nodered", batched)]
        for variant, kind, workload in variants:
            database = f"bench_{variant}_r{round_no}"
            consumer: Consumer
            if kind == "collector":
                consumer = CollectorGroup(work, broker.port, influxdb.url, database,
                                          plan.collectors)
            else:
                consumer = NodeRedProcess(work, broker.port, influxdb.port, database)
            runs.append(run_consumer(variant, round_no, consumer, broker.port, influxdb.url,
                                     database, workload, control, plan.stall_s))
            _progress(runs[-1])
    return runs


def _progress(run: Run) -> None:
    extra = "" if run.publish_s is None else (
        f", published in {run.publish_s:.1f} s, consumer CPU {run.cpu_s:.1f} s, "
        f"peak RSS {(run.peak_rss or 0) / 2**20:.0f} MB, {run.stats}")
    done = "" if run.complete else " INCOMPLETE"
    sys.stdout.write(f"  {run.variant:<18} {run.readings:>8} readings in {run.seconds:6.2f} s"
                     f" = {run.rate:>9,.0f}/s{done}{extra}\n")


# --------------------------------------------------------------------------- report

LABELS = {
    "influxdb": "InfluxDB own batch writes (the limit)",
    "collector_single": "(a) collector, 1 reading/message",
    "collector_batched": "(b) collector, gateway batches",
    "nodered_single": "Node-RED flow, 1 reading/message",
    "nodered_batched": "Node-RED flow, gateway batches",
}


def summarise(runs: Sequence[Run]) -> dict[str, dict[str, Any]]:
    summary: dict[str, dict[str, Any]] = {}
    for variant in LABELS:
        mine = [r for r in runs if r.variant == variant]
        if not mine:
            continue
        rates = [r.rate for r in mine]
        cpu = [r.cpu_s / r.readings * 10_000 for r in mine if r.cpu_s is not None and r.readings]
        rss = [r.peak_rss for r in mine if r.peak_rss is not None]
        summary[variant] = {
            "median_rate": statistics.median(rates), "min_rate": min(rates),
            "max_rate": max(rates), "complete": all(r.complete for r in mine),
            "cpu_s_per_10k": statistics.median(cpu) if cpu else None,
            "peak_rss_mb": max(rss) / 2**20 if rss else None,
        }
    return summary


def paired_ratio(runs: Sequence[Run], numerator: str, denominator: str) -> list[float]:
    """Per round, one variant's rate over another's: both ran minutes apart on the same
    services, so a slow spell on the shared machine cancels out more than across rounds."""
    rates = {(r.variant, r.round_no): r.rate for r in runs}
    rounds = sorted({r.round_no for r in runs})
    return [rates[numerator, n] / rates[denominator, n] for n in rounds
            if (numerator, n) in rates and (denominator, n) in rates and rates[denominator, n]]


Check = tuple[str, float, str, float, list[float]]


def checks(runs: Sequence[Run], summary: dict[str, dict[str, Any]]) -> list[Check]:
    """(name, median value, sense, target, per-round values) for each target measured."""
    out: list[Check] = []
    for name, numerator, denominator, target in (
            ("(a) collector / Node-RED, single", "collector_single", "nodered_single",
             TARGET_VS_NODERED),
            ("(b) collector batches / InfluxDB", "collector_batched", "influxdb",
             TARGET_VS_INFLUX)):
        ratios = paired_ratio(runs, numerator, denominator)
        if ratios:
            out.append((name, statistics.median(ratios), ">=", target, ratios))
    peaks = [summary[v]["peak_rss_mb"] for v in ("collector_single", "collector_batched")
             if v in summary]
    if peaks:
        out.append(("collector peak RSS, MB", max(peaks), "<=", TARGET_RSS_MB, peaks))
    return out


def report(plan: Plan, runs: Sequence[Run], load: tuple[float, float]) -> bool:
    """Print the table and the target checks; True if every target passed."""
    summary = summarise(runs)
    out = sys.stdout.write
    out(f"\n{plan.readings:,} meter readings per variant, gateway batches of "
        f"{plan.per_message}, {plan.collectors} collector process(es), "
        f"median of {plan.repeat} round(s); "
        f"load average {load[0]:.1f} before, {load[1]:.1f} after, {os.cpu_count()} CPUs; "
        f"code {code_revision(REPO, *MEASURED)}\n\n")
    out(f"{'variant':<40}{'readings/s':>12}{'min-max':>18}{'CPU s/10k':>11}{'peak MB':>9}\n")
    for variant, label in LABELS.items():
        if variant not in summary:
            continue
        s = summary[variant]
        spread = f"{s['min_rate']:,.0f}-{s['max_rate']:,.0f}"
        cpu = "-" if s["cpu_s_per_10k"] is None else f"{s['cpu_s_per_10k']:.2f}"
        rss = "-" if s["peak_rss_mb"] is None else f"{s['peak_rss_mb']:.0f}"
        done = "" if s["complete"] else "  INCOMPLETE"
        out(f"{label:<40}{s['median_rate']:>12,.0f}{spread:>18}{cpu:>11}{rss:>9}{done}\n")
    out("\n")
    # A variant that never delivered everything fails every target: its rate is not a rate.
    complete = all(s["complete"] for s in summary.values())
    passed = complete
    results = checks(runs, summary)
    out(f"{'target':<36}{'median':>8}   {'':<16}{'':<6}per round\n")
    for name, value, sense, target, values in results:
        ok = complete and (value >= target if sense == ">=" else value <= target)
        passed = passed and ok
        each = " ".join(f"{v:.2f}" for v in values)
        out(f"{name:<36}{value:>8.2f}   target {sense} {target:<6g} {'PASS' if ok else 'FAIL'}"
            f"  {each}\n")
    if plan.json_out is not None:
        write_json(plan, runs, load, summary, results)
    return passed


def write_json(plan: Plan, runs: Sequence[Run], load: tuple[float, float],
               summary: dict[str, dict[str, Any]],
               results: list[Check]) -> None:
    if plan.json_out is None:
        return
    document = {
        "readings": plan.readings, "per_message": plan.per_message, "repeat": plan.repeat,
        "load_average": load, "code": code_revision(REPO, *MEASURED), "summary": summary,
        "collectors": plan.collectors,
        "checks": [{"name": n, "value": v, "sense": s, "target": t, "each": e}
                   for n, v, s, t, e in results],
        "runs": [{"variant": r.variant, "round": r.round_no, "readings": r.readings,
                  "seconds": r.seconds, "rate": r.rate, "complete": r.complete,
                  "publish_s": r.publish_s, "cpu_s": r.cpu_s, "peak_rss": r.peak_rss,
                  "stats": r.stats} for r in runs],
    }
    plan.json_out.write_text(json.dumps(document, indent=1) + "\n")


def parse_args(argv: Sequence[str] | None = None) -> Plan:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readings", type=int, default=100_000, help="readings per variant")
    parser.add_argument("--per-message", type=int, default=60,
                        help="readings per gateway batch message in (b)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the median is reported")
    parser.add_argument("--skip-nodered", action="store_true", help="no Node-RED (no npm)")
    parser.add_argument("--stall-timeout", type=float, default=60.0,
                        help="give a variant up when its count stops rising this long (s)")
    parser.add_argument("--collectors", type=int, default=1,
                        help="collector processes; more than 1 split the stream as a shared "
                             "subscription group (peak RSS is then the largest member's)")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE",
                        help="also write every run and the summary to FILE as JSON")
    args = parser.parse_args(argv)
    if min(args.readings, args.per_message, args.repeat, args.collectors) < 1:
        parser.error("--readings, --per-message, --repeat and --collectors must be at least 1")
    return Plan(args.readings, args.per_message, args.repeat, not args.skip_nodered,
                args.stall_timeout, args.collectors, args.json)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    plan = parse_args(argv)
    if plan.nodered:
        if shutil.which("node") is None:
            sys.stderr.write("node is not installed: use --skip-nodered\n")
            return 2
        try:
            install_nodered()
        except (OSError, subprocess.CalledProcessError) as exc:
            log.error("npm ci in %s failed: %s (or use --skip-nodered)", NODERED, exc)
            return 2
    work = Path(tempfile.mkdtemp(prefix="rw-bench-"))
    broker, influxdb = Mosquitto(work / "mosquitto"), InfluxDB(work / "influxdb")
    control = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                          client_id="bench-control", protocol=mqtt.MQTTv5)
    load_before = os.getloadavg()[0]
    failed = True
    try:
        broker.start()
        influxdb.start()
        control.connect("127.0.0.1", broker.port)
        control.loop_start()
        runs = run_all(plan, work, broker, influxdb, control)
        passed = report(plan, runs, (load_before, os.getloadavg()[0]))
        failed = False
        return 0 if passed else 1
    except (BenchmarkError, ServiceError, InfluxError, OSError,
            subprocess.SubprocessError) as exc:
        log.error("benchmark failed: %s (logs kept in %s)", exc, work)
        return 2
    finally:
        control.disconnect()
        control.loop_stop()
        broker.stop()
        influxdb.stop()
        if not failed:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
