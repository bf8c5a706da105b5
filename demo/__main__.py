"""``python -m demo`` (``./scripts/demo.sh``): the whole system on this machine.

Starts Mosquitto and InfluxDB with their data under ``var/demo``, the collector as its own
process, the ticket service (``python -m api`` on SQLite, the county's register imported),
and the county simulator accelerated (a simulated day per minute by default), printing
progress as it goes. When the simulated days are in, the analysis makes a pass over them
(``python -m analysis once``): its alerts become tickets in the API. At the end it shows what
landed, the alerts and tickets, and how to look at the data.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from common.influx import InfluxClient
from common.localservices import InfluxDB, Mosquitto, free_port
from common.settings import InfluxSettings, MqttSettings, get_settings
from demo.services import ApiProcess, analyse_once
from simulator.publisher import Progress, build_client, connect
from simulator.session import RunPlan, prepare, run

log = logging.getLogger("demo")
REPO = Path(__file__).resolve().parents[1]
FIELD_OF = {"meter": "volume_m3", "pump": "flow_m3h", "tank": "level_m",
            "dma_inflow": "flow_m3h", "quality": "turbidity_ntu", "event": "severity",
            "gateway_status": "online"}


def _parse() -> argparse.Namespace:
    defaults = get_settings().simulator
    parser = argparse.ArgumentParser(prog="./scripts/demo.sh", description=__doc__)
    parser.add_argument("--villages", type=int, default=defaults.villages)
    parser.add_argument("--households-per-village", type=int,
                        default=defaults.households_per_village)
    parser.add_argument("--days", type=float, default=defaults.days)
    parser.add_argument("--speed", type=float, default=defaults.speed,
                        help="simulated seconds per wall second (1440: a day per minute)")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--data-dir", type=Path, default=REPO / "var" / "demo")
    parser.add_argument("--keep", action="store_true",
                        help="keep the data of earlier runs (default: start fresh)")
    parser.add_argument("--keep-running", action="store_true",
                        help="leave the services up afterwards until Ctrl-C")
    parser.add_argument("--via-gateways", action="store_true",
                        help="the real field path: simulated CJ/T 188 meter banks and Modbus "
                        "devices on local ports, polled by one `python -m gateway` per village")
    parser.add_argument("--minutes", type=float, default=3.0,
                        help="with --via-gateways: how long to run")
    return parser.parse_args()


def _port(preferred: int) -> int:
    """The demo's usual port if it is free, so the printed commands stay the same."""
    with socket.socket() as sock:
        if sock.connect_ex(("127.0.0.1", preferred)) != 0:
            return preferred
    return free_port()


def say(text: str) -> None:
    print(text, flush=True)  # noqa: T201 - the demo talks to a person


class CollectorProcess:
    def __init__(self, data_dir: Path, mqtt_port: int, influx_url: str) -> None:
        self.health_port = free_port()
        env = os.environ | {
            "RURALWATER_MQTT__PORT": str(mqtt_port), "RURALWATER_INFLUX__URL": influx_url,
            "RURALWATER_COLLECTOR__DATA_DIR": str(data_dir / "collector"),
            "RURALWATER_COLLECTOR__HEALTH_PORT": str(self.health_port),
            "RURALWATER_COLLECTOR__CLIENT_ID": "demo-collector",
        }
        log_file = (data_dir / "collector.log").open("ab")
        self.process = subprocess.Popen([sys.executable, "-m", "collector"], env=env, cwd=REPO,
                                        stdout=log_file, stderr=subprocess.STDOUT)

    def health(self) -> dict:
        try:
            return httpx.get(f"http://127.0.0.1:{self.health_port}/health", timeout=2).json()
        except (httpx.HTTPError, ValueError):
            return {}

    def wait_connected(self, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.health().get("mqtt_connected"):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise SystemExit("the collector did not start; see var/demo/collector.log")
            time.sleep(0.2)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)


def main() -> None:
    args = _parse()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not args.keep and args.data_dir.exists():
        shutil.rmtree(args.data_dir)
    args.data_dir.mkdir(parents=True, exist_ok=True)
    broker = Mosquitto(args.data_dir / "mosquitto", port=_port(11883))
    influxdb = InfluxDB(args.data_dir / "influxdb", port=_port(18086))
    broker.start()
    influxdb.start()
    say(f"Mosquitto on 127.0.0.1:{broker.port}, InfluxDB on {influxdb.url} "
        f"(data in {args.data_dir})")
    collector = CollectorProcess(args.data_dir, broker.port, influxdb.url)
    api: ApiProcess | None = None
    try:
        collector.wait_connected()
        say(f"collector running: health at http://127.0.0.1:{collector.health_port}/health")
        plan = RunPlan(seed=args.seed, villages=args.villages,
                       households_per_village=args.households_per_village or None,
                       days=args.days, speed=args.speed, output_dir=args.data_dir / "truth")
        register = args.data_dir / "truth" / "register.json"
        if not args.via_gateways:
            prepare(plan).county.write(register)
            api = ApiProcess(args.data_dir / "api", _port(18000), influxdb.url)
            api.start(register)
            say(f"ticket service on {api.url} (OpenAPI at {api.url}/docs); "
                f"{len(api.crews)} crews")
        if args.via_gateways:
            _through_gateways(args, broker.port, collector)
        else:
            _simulate(plan, broker.port, collector)
        _wait_caught_up(collector)
        _summary(influxdb.url, plan, collector)
        if api is not None:
            say("\nanalysis: one pass over what InfluxDB holds (python -m analysis once)")
            say(analyse_once(args.data_dir / "analysis", influxdb.url, api, register))
            api.show_outcome(say)
        if args.keep_running:
            say("\nservices stay up; Ctrl-C to stop")
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        say("stopping")
    finally:
        if api is not None:
            api.stop()
        collector.stop()
        broker.stop()
        influxdb.stop()


def _simulate(plan: RunPlan, mqtt_port: int, collector: CollectorProcess) -> None:
    prepared = prepare(plan)
    county, incidents = prepared.county, prepared.incidents
    say(f"county: {len(county.villages)} villages, {len(county.households)} household meters, "
        f"{len(county.wells)} wells, {len(county.analysers)} analysers, "
        f"{len(incidents)} scripted incidents; simulating {plan.days:g} days from "
        f"{prepared.start:%Y-%m-%d %H:%M} UTC at {plan.speed:g}x")

    def progress(p: Progress) -> None:
        health = collector.health()
        injected = sum(1 for i in incidents if p.sim_time and i.start <= p.sim_time)
        say(f"  sim {p.sim_time:%m-%d %H:%M}  published {p.total_readings:>8} readings "
            f"({p.readings_per_s:>6,.0f}/s)  written {health.get('points_written', 0):>8}  "
            f"dead letters {health.get('dead_letters', 0)}  incidents {injected}/{len(incidents)}")

    mqtt = MqttSettings(port=mqtt_port)
    client = build_client(mqtt, client_id="demo-simulator")
    connect(client, mqtt)
    try:
        result = run(plan, client, progress=progress)
    finally:
        client.disconnect()
        client.loop_stop()
    say(f"published {result.total_readings} readings and {result.events} events in "
        f"{result.messages} messages ({result.wall_s:.0f} s)")


def _child(command: list[str], log_path: Path, **env: str) -> subprocess.Popen[bytes]:
    log_file = log_path.open("ab")
    return subprocess.Popen(command, cwd=REPO, env=os.environ | env, stdout=log_file,
                            stderr=subprocess.STDOUT)


def _through_gateways(args: argparse.Namespace, mqtt_port: int,
                      collector: CollectorProcess) -> None:
    """Device simulators speak CJ/T 188 and Modbus; real gateways poll them and publish."""
    devices_dir = args.data_dir / "devices"
    households = args.households_per_village or 20
    children = [_child(
        [sys.executable, "-m", "gateway.devices", "--seed", str(args.seed), "--villages",
         str(args.villages), "--households-per-village", str(households), "--speed",
         str(args.speed), "--out", str(devices_dir)],
        args.data_dir / "devices.log")]
    try:
        configs = _wait_for_configs(devices_dir, args.villages, children[0])
        for config in configs:
            # Meters are read hourly in the field; a few minutes' demo reads them each minute.
            text = config.read_text() + ("polling: {meter_interval_s: 60, pump_interval_s: 10, "
                                         "quality_interval_s: 20}\n")
            config.write_text(text)
            children.append(_child(
                [sys.executable, "-m", "gateway", "--config", str(config)],
                args.data_dir / f"{config.stem}.log",
                RURALWATER_MQTT__PORT=str(mqtt_port), RURALWATER_LOG_LEVEL="WARNING",
                RURALWATER_GATEWAY__DATA_DIR=str(args.data_dir / "gateways" / config.stem)))
        say(f"{len(configs)} gateways polling simulated meter banks (CJ/T 188 over TCP) and "
            f"Modbus drives and analysers; running {args.minutes:g} minutes")
        deadline = time.monotonic() + args.minutes * 60
        while time.monotonic() < deadline:
            time.sleep(5)
            health = collector.health()
            say(f"  messages {health.get('messages_in', 0):>7}  readings "
                f"{health.get('readings_in', 0):>8}  written {health.get('points_written', 0):>8}"
                f"  dead letters {health.get('dead_letters', 0)}")
    finally:
        for child in reversed(children):
            child.terminate()
        for child in children:
            child.wait(timeout=60)


def _wait_for_configs(folder: Path, villages: int, devices: subprocess.Popen[bytes],
                      timeout_s: float = 60) -> list[Path]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        configs = sorted(folder.glob("gw-*.yaml"))
        if len(configs) >= villages:
            time.sleep(0.5)  # the last file may still be being written
            return configs
        if devices.poll() is not None:
            break
        time.sleep(0.2)
    raise SystemExit("the device simulators did not start; see var/demo/devices.log")


def _wait_caught_up(collector: CollectorProcess, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    previous = -1
    while time.monotonic() < deadline:
        health = collector.health()
        written = health.get("points_written", 0)
        if health.get("queued_messages", 1) == 0 and written == previous:
            return
        previous = written
        time.sleep(1.0)


def _summary(influx_url: str, plan: RunPlan, collector: CollectorProcess) -> None:
    settings = InfluxSettings(url=influx_url)
    with InfluxClient(settings) as influx:
        say("\nwhat InfluxDB holds now (points per measurement):")
        for measurement, field in FIELD_OF.items():
            say(f"  {measurement:<15} {influx.count(measurement, field):>9}")
    health = collector.health()
    say(f"collector: {health.get('messages_in')} messages, "
        f"{health.get('points_written')} points written, "
        f"{health.get('dead_letters')} dead letters, {health.get('gaps')} sequence gaps")
    port = influx_url.rsplit(":", 1)[1]
    if plan.output_dir.exists():
        say(f"\nground truth (asset register, incidents with their measured effect): "
            f"{plan.output_dir}/")
    say(f"""
look at the data:
  influx -port {port} -database ruralwater -precision rfc3339 \\
    -execute 'SELECT max("flow_m3h"), min("flow_m3h") FROM "dma_inflow" GROUP BY "dma"'
  influx -port {port} -database ruralwater \\
    -execute 'SELECT * FROM "event" ORDER BY time DESC LIMIT 10'
  curl -sG {influx_url}/query --data-urlencode db=ruralwater \\
    --data-urlencode 'q=SELECT last("free_chlorine_mgl") FROM "quality" GROUP BY "device"'
(rerun with --keep-running to keep the services up while you look)""")


if __name__ == "__main__":
    main()
